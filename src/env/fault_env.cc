#include "env/fault_env.h"

#include <atomic>
#include <cerrno>
#include <cstring>

namespace varve {
namespace {

const char* OpName(FaultEnv::Op op) {
  switch (op) {
    case FaultEnv::Op::kAppend:
      return "write";
    case FaultEnv::Op::kSync:
      return "fdatasync";
    case FaultEnv::Op::kCreate:
      return "open";
    case FaultEnv::Op::kRead:
      return "pread";
    case FaultEnv::Op::kRename:
      return "rename";
    case FaultEnv::Op::kRemove:
      return "unlink";
    case FaultEnv::Op::kTruncate:
      return "truncate";
    case FaultEnv::Op::kSyncDir:
      return "fsync";
  }
  return "?";
}

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)), appended_(base_->Size()) {}

  Status Append(std::string_view data) override {
    bool short_write = false;
    Status s = env_->MaybeFail(FaultEnv::Op::kAppend, path_, &short_write);
    if (!s.ok()) {
      if (short_write && data.size() > 1) {
        if (base_->Append(data.substr(0, data.size() / 2)).ok()) {
          appended_.store(base_->Size());
          env_->NoteAppended(path_, appended_.load());
        }
      }
      return s;
    }
    s = base_->Append(data);
    appended_.store(base_->Size());
    env_->NoteAppended(path_, appended_.load());
    return s;
  }
  // May run while another thread appends (group commits sync outside the leader).
  Status Sync() override {
    VARVE_RETURN_IF_ERROR(env_->MaybeFail(FaultEnv::Op::kSync, path_));
    uint64_t size = appended_.load();
    VARVE_RETURN_IF_ERROR(base_->Sync());
    env_->NoteSynced(path_, size);
    return Status::Ok();
  }
  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
  std::atomic<uint64_t> appended_;  // base_'s size after the last Append
};

class FaultRandomAccessFile final : public RandomAccessFile {
 public:
  FaultRandomAccessFile(FaultEnv* env, std::string path, std::unique_ptr<RandomAccessFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    VARVE_RETURN_IF_ERROR(env_->MaybeFail(FaultEnv::Op::kRead, path_));
    return base_->Read(offset, n, scratch);
  }
  Result<uint64_t> Size() const override { return base_->Size(); }
  void AdviseRandom() override { base_->AdviseRandom(); }
  void AdviseSequential() override { base_->AdviseSequential(); }
  void AdviseWillNeed(uint64_t offset, uint64_t n) override { base_->AdviseWillNeed(offset, n); }

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<RandomAccessFile> base_;
};

}  // namespace

FaultEnv::FaultEnv(Env* base) : base_(base) {}

std::string FaultEnv::DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

void FaultEnv::FailAfter(Op op, int n, int error, bool sticky) {
  std::lock_guard lock(mu_);
  faults_[op] = Fault{n, error, sticky, false};
}

void FaultEnv::ClearFaults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

void FaultEnv::Crash() {
  std::lock_guard lock(mu_);
  crashed_ = true;
}

void FaultEnv::ClearCrash() {
  std::lock_guard lock(mu_);
  crashed_ = false;
}

uint64_t FaultEnv::calls(Op op) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

Status FaultEnv::MaybeFail(Op op, const std::string& path, bool* short_write) {
  std::lock_guard lock(mu_);
  ++calls_[op];
  int error = 0;
  if (crashed_) {
    error = EIO;
  } else {
    auto it = faults_.find(op);
    if (it != faults_.end()) {
      Fault& f = it->second;
      if (f.firing) {
        error = f.error;
      } else if (f.remaining == 0) {
        f.firing = f.sticky;
        if (!f.sticky) f.remaining = -1;
        error = f.error;
        if (short_write != nullptr) *short_write = true;
      } else if (f.remaining > 0) {
        --f.remaining;
      }
    }
  }
  if (error == 0) return Status::Ok();
  return Status::IOError(std::string(OpName(op)) + " " + path + ": " + std::strerror(error) +
                         " (injected)");
}

void FaultEnv::NoteAppended(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  files_[path].size = size;
}

void FaultEnv::NoteSynced(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  FileState& f = files_[path];
  f.synced_size = std::max(f.synced_size, size);
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewWritableFile(const std::string& path) {
  VARVE_RETURN_IF_ERROR(MaybeFail(Op::kCreate, path));
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, base_->NewWritableFile(path));
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(path);
    bool existed = it != files_.end() && it->second.entry_durable;
    files_[path] = FileState{0, 0, existed};
  }
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, path, std::move(f)));
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewAppendableFile(const std::string& path) {
  VARVE_RETURN_IF_ERROR(MaybeFail(Op::kCreate, path));
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, base_->NewAppendableFile(path));
  {
    std::lock_guard lock(mu_);
    if (files_.count(path) == 0) {
      // A file from before this env saw it: all of it is durable.
      files_[path] = FileState{f->Size(), f->Size(), true};
    }
  }
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, path, std::move(f)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultEnv::NewRandomAccessFile(const std::string& path) {
  VARVE_RETURN_IF_ERROR(MaybeFail(Op::kRead, path));
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, base_->NewRandomAccessFile(path));
  return std::unique_ptr<RandomAccessFile>(new FaultRandomAccessFile(this, path, std::move(f)));
}

Status FaultEnv::RemoveFile(const std::string& path) {
  VARVE_RETURN_IF_ERROR(MaybeFail(Op::kRemove, path));
  VARVE_RETURN_IF_ERROR(base_->RemoveFile(path));
  std::lock_guard lock(mu_);
  files_.erase(path);
  return Status::Ok();
}

Status FaultEnv::RenameFile(const std::string& from, const std::string& to) {
  VARVE_RETURN_IF_ERROR(MaybeFail(Op::kRename, from));
  VARVE_RETURN_IF_ERROR(base_->RenameFile(from, to));
  std::lock_guard lock(mu_);
  FileState state = files_.count(from) ? files_[from] : FileState{};
  files_.erase(from);
  state.entry_durable = false;  // until the directory is synced
  files_[to] = state;
  return Status::Ok();
}

Status FaultEnv::Truncate(const std::string& path, uint64_t size) {
  VARVE_RETURN_IF_ERROR(MaybeFail(Op::kTruncate, path));
  VARVE_RETURN_IF_ERROR(base_->Truncate(path, size));
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it != files_.end()) {
    it->second.size = size;
    it->second.synced_size = std::min(it->second.synced_size, size);
  }
  return Status::Ok();
}

Status FaultEnv::SyncDir(const std::string& dir) {
  VARVE_RETURN_IF_ERROR(MaybeFail(Op::kSyncDir, dir));
  VARVE_RETURN_IF_ERROR(base_->SyncDir(dir));
  std::lock_guard lock(mu_);
  for (auto& [path, state] : files_) {
    if (DirOf(path) == dir) state.entry_durable = true;
  }
  return Status::Ok();
}

Status FaultEnv::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string& path = it->first;
    FileState& f = it->second;
    if (!f.entry_durable) {
      if (base_->FileExists(path)) VARVE_RETURN_IF_ERROR(base_->RemoveFile(path));
      it = files_.erase(it);
      continue;
    }
    if (base_->FileExists(path)) {
      VARVE_RETURN_IF_ERROR(base_->Truncate(path, f.synced_size));
    }
    f.size = f.synced_size;
    ++it;
  }
  return Status::Ok();
}

}  // namespace varve
