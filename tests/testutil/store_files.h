// The files of a store directory, for tests that damage or inspect them.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace varve::testing {

// Paths of the segment files (.vlog) in dir, oldest (lowest id) first.
inline std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".vlog") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace varve::testing
