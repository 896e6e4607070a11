// Minimal leveled logging to stderr; the engine logs only rare events (recovery, damage).
#pragma once

#include <string_view>

namespace varve {

void LogInfo(std::string_view msg);
void LogWarning(std::string_view msg);

}  // namespace varve
