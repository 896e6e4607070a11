#include "engine/table_layers.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "engine/segment_io.h"
#include "util/crc32c.h"

namespace varve {
namespace {

constexpr char kManifest[] = "TABLES";
constexpr char kManifestMagic[] = "VARVTABLES 1";

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

Status CopyFile(Env* env, const std::string& from, const std::string& to) {
  VARVE_ASSIGN_OR_RETURN(auto in, env->NewRandomAccessFile(from));
  VARVE_ASSIGN_OR_RETURN(uint64_t size, in->Size());
  in->AdviseSequential();
  VARVE_ASSIGN_OR_RETURN(auto out, env->NewWritableFile(to));
  std::string buf(1 << 20, '\0');
  for (uint64_t off = 0; off < size;) {
    VARVE_ASSIGN_OR_RETURN(size_t n, in->Read(off, buf.size(), buf.data()));
    if (n == 0) return Status::IOError(from + ": file shrank while being copied");
    VARVE_RETURN_IF_ERROR(out->Append(std::string_view(buf.data(), n)));
    off += n;
  }
  VARVE_RETURN_IF_ERROR(out->Sync());
  return out->Close();
}

}  // namespace

Result<std::unique_ptr<TableLayers>> TableLayers::Open(Env* env, const std::string& dir) {
  std::unique_ptr<TableLayers> t(new TableLayers(env, dir));
  auto set = std::make_shared<Set>();
  const std::string manifest = dir + "/" + kManifest;
  (void)env->RemoveFile(manifest + ".tmp");
  std::set<std::string> listed;
  if (env->FileExists(manifest)) {
    VARVE_ASSIGN_OR_RETURN(auto f, env->NewRandomAccessFile(manifest));
    VARVE_ASSIGN_OR_RETURN(uint64_t size, f->Size());
    std::string text(size, '\0');
    VARVE_ASSIGN_OR_RETURN(size_t n, f->Read(0, size, text.data()));
    text.resize(n);
    // Last line: "checksum HEX" (masked crc32c of every byte before it).
    size_t cut = text.rfind("checksum ");
    unsigned crc = 0;
    if (cut == std::string::npos || std::sscanf(text.c_str() + cut, "checksum %x", &crc) != 1 ||
        crc32c::Mask(crc32c::Value(std::string_view(text).substr(0, cut))) != crc) {
      return Status::Corruption(manifest + ": bad checksum");
    }
    std::istringstream in(text.substr(0, cut));
    std::string line;
    if (!std::getline(in, line) || line != kManifestMagic) {
      return Status::Corruption(manifest + ": not a TABLES manifest (or an unknown version)");
    }
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string kind;
      words >> kind;
      if (kind == "generation") {
        words >> set->generation;
      } else if (kind == "table") {
        Layer l;
        words >> l.name >> l.file;
        if (!ValidName(l.name) || !ValidName(l.file)) {
          return Status::Corruption(manifest + ": bad line '" + line + "'");
        }
        auto r = TableReader::Open(dir + "/tables/" + l.file);
        if (!r.ok()) return r.status();
        l.reader = *r;
        listed.insert(l.file);
        set->layers.push_back(std::move(l));
      } else {
        return Status::Corruption(manifest + ": bad line '" + line + "'");
      }
    }
  }
  if (env->FileExists(dir + "/tables")) {
    VARVE_ASSIGN_OR_RETURN(auto names, env->ListDir(dir + "/tables"));
    for (const auto& n : names) {
      if (listed.count(n) == 0) (void)env->RemoveFile(dir + "/tables/" + n);
    }
  }
  t->Publish(std::move(set));
  return t;
}

void TableLayers::Publish(std::shared_ptr<const Set> set) {
  bool empty = set->layers.empty();
  {
    std::lock_guard lock(mu_);
    current_ = std::move(set);
  }
  empty_.store(empty, std::memory_order_release);
}

Status TableLayers::WriteManifest(const Set& set) {
  std::string text = std::string(kManifestMagic) + "\n";
  text += "generation " + std::to_string(set.generation) + "\n";
  for (const Layer& l : set.layers) text += "table " + l.name + " " + l.file + "\n";
  char sum[32];
  std::snprintf(sum, sizeof sum, "checksum %08x\n", crc32c::Mask(crc32c::Value(text)));
  text += sum;
  return WriteFileAtomically(env_, dir_ + "/" + kManifest, text, dir_);
}

Status TableLayers::Attach(const std::string& path, std::string* name_out) {
  std::lock_guard attach(attach_mu_);
  std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (!ValidName(name)) {
    return Status::InvalidArgument("table file name '" + name +
                                   "' must be letters, digits, '.', '_' or '-'");
  }
  std::shared_ptr<const Set> old = Current();
  auto set = std::make_shared<Set>(*old);
  set->generation = old->generation + 1;
  const std::string tables = dir_ + "/tables";
  VARVE_RETURN_IF_ERROR(env_->CreateDirIfMissing(tables));
  Layer l;
  l.name = name;
  l.file = name + "." + std::to_string(set->generation);
  const std::string dest = tables + "/" + l.file;
  Status s = CopyFile(env_, path, dest);
  if (s.ok()) s = env_->SyncDir(tables);
  if (s.ok()) {
    auto r = TableReader::Open(dest);
    if (r.ok()) {
      l.reader = *r;
    } else {
      s = r.status();
    }
  }
  if (!s.ok()) {
    (void)env_->RemoveFile(dest);
    return s;
  }
  std::string replaced;
  auto it = std::find_if(set->layers.begin(), set->layers.end(),
                         [&](const Layer& x) { return x.name == name; });
  if (it != set->layers.end()) {
    replaced = it->file;
    *it = std::move(l);
  } else {
    set->layers.push_back(std::move(l));
  }
  s = WriteManifest(*set);
  if (!s.ok()) {
    (void)env_->RemoveFile(dest);
    return s;
  }
  Publish(std::move(set));
  // Readers still holding the old set keep its mapping; the name goes now.
  if (!replaced.empty()) (void)env_->RemoveFile(tables + "/" + replaced);
  if (name_out != nullptr) *name_out = name;
  return Status::Ok();
}

Status TableLayers::Detach(const std::string& name) {
  std::lock_guard attach(attach_mu_);
  std::shared_ptr<const Set> old = Current();
  auto set = std::make_shared<Set>(*old);
  auto it = std::find_if(set->layers.begin(), set->layers.end(),
                         [&](const Layer& x) { return x.name == name; });
  if (it == set->layers.end()) return Status::NotFound("no attached table named '" + name + "'");
  std::string file = it->file;
  set->layers.erase(it);
  set->generation = old->generation + 1;
  VARVE_RETURN_IF_ERROR(WriteManifest(*set));
  Publish(std::move(set));
  (void)env_->RemoveFile(dir_ + "/tables/" + file);
  return Status::Ok();
}

Status TableLayers::Get(const Set& set, std::string_view key, std::string* value) {
  for (auto it = set.layers.rbegin(); it != set.layers.rend(); ++it) {
    bool tombstone = false;
    Status s = it->reader->Find(key, value, &tombstone);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return s;
    if (tombstone) return Status::NotFound();
    return Status::Ok();
  }
  return Status::NotFound();
}

bool TableLayers::Holds(const Set& set, std::string_view key) {
  std::string value;
  Status s = Get(set, key, &value);
  return s.ok() || !s.IsNotFound();  // a damaged record may hold it: shadow it to be safe
}

}  // namespace varve
