#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "table/table_internal.h"

namespace varve::table {

uint32_t BlockChecksum(const char* data, size_t n) {
  return static_cast<uint32_t>(XXH3_64bits(data, n));
}
uint64_t SectionChecksum(const char* data, size_t n) { return XXH3_64bits(data, n); }

XxhState::XxhState() : state_(XXH3_createState()) {
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}
XxhState::~XxhState() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void XxhState::Update(std::string_view data) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size());
}
uint64_t XxhState::Digest() const {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_));
}

size_t MaxCompressedSize(TableCompression c, size_t raw_size) {
  if (c == TableCompression::kLz4 && raw_size <= LZ4_MAX_INPUT_SIZE) {
    return LZ4_compressBound(static_cast<int>(raw_size));
  }
  if (c == TableCompression::kZstd) return ZSTD_compressBound(raw_size);
  return 0;
}

size_t CompressBlockTo(TableCompression c, int zstd_level, std::string_view raw, char* dst) {
  const size_t cap = MaxCompressedSize(c, raw.size());
  size_t n = 0;
  if (c == TableCompression::kLz4 && cap > 0) {
    int r =
        LZ4_compress_default(raw.data(), dst, static_cast<int>(raw.size()), static_cast<int>(cap));
    n = r > 0 ? static_cast<size_t>(r) : 0;
  } else if (c == TableCompression::kZstd) {
    size_t r = ZSTD_compress(dst, cap, raw.data(), raw.size(), zstd_level);
    n = ZSTD_isError(r) ? 0 : r;
  }
  return n < raw.size() ? n : 0;
}

bool DecompressBlock(TableCompression c, std::string_view in, uint64_t raw_size, std::string* out) {
  if (raw_size > kMaxRawBlockSize) return false;
  if (out->size() < raw_size) out->resize(raw_size);
  if (c == TableCompression::kLz4) {
    int n = LZ4_decompress_safe(in.data(), out->data(), static_cast<int>(in.size()),
                                static_cast<int>(raw_size));
    return n >= 0 && static_cast<uint64_t>(n) == raw_size;
  }
  if (c == TableCompression::kZstd) {
    // One context per thread: no allocation per block, and none to leak when a read of a
    // mapping in here raises SIGBUS (env/mmap_guard.h).
    thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(),
                                                                         ZSTD_freeDCtx);
    if (dctx == nullptr) return false;
    size_t n = ZSTD_decompressDCtx(dctx.get(), out->data(), raw_size, in.data(), in.size());
    return !ZSTD_isError(n) && n == raw_size;
  }
  return false;
}

int64_t DecompressLz4Prefix(std::string_view in, uint64_t raw_size, uint64_t want,
                            std::string* out) {
  if (raw_size > kMaxRawBlockSize || want > raw_size) return -1;
  if (out->size() < raw_size) out->resize(raw_size);
  const int n = LZ4_decompress_safe_partial(in.data(), out->data(), static_cast<int>(in.size()),
                                            static_cast<int>(want), static_cast<int>(raw_size));
  return n;
}

Result<std::unique_ptr<BufferedWriter>> BufferedWriter::Create(Env* env, const std::string& path,
                                                               bool direct) {
  VARVE_ASSIGN_OR_RETURN(auto file,
                         direct ? env->NewDirectWritableFile(path) : env->NewWritableFile(path));
  auto w = std::make_unique<BufferedWriter>();
  w->file_ = std::move(file);
  w->direct_ = direct;
  if (!direct) w->buf_.reserve(kBufferSize + 4096);
  return w;
}

Status BufferedWriter::Flush() {
  if (buf_.empty()) return Status::Ok();
  VARVE_RETURN_IF_ERROR(file_->Append(buf_));
  flushed_ += buf_.size();
  buf_.clear();
  return Status::Ok();
}

Status BufferedWriter::Sync() {
  VARVE_RETURN_IF_ERROR(Flush());
  return file_->Sync();
}

Status BufferedWriter::Close() {
  VARVE_RETURN_IF_ERROR(Flush());
  return file_->Close();
}

Result<std::unique_ptr<BufferedReader>> BufferedReader::Open(Env* env, const std::string& path) {
  VARVE_ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(path));
  auto r = std::make_unique<BufferedReader>();
  VARVE_ASSIGN_OR_RETURN(r->size_, file->Size());
  file->AdviseSequential();
  r->file_ = std::move(file);
  r->path_ = path;
  return r;
}

Status BufferedReader::Read(size_t n, char* dst) {
  while (n > 0) {
    if (pos_ == buf_.size()) {
      if (offset_ >= size_) return Status::Corruption(path_ + ": unexpected end of file");
      if (n >= (1 << 20)) {
        // A large read goes straight into dst, not through buf_.
        const size_t want = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset_));
        VARVE_ASSIGN_OR_RETURN(size_t got, file_->Read(offset_, want, dst));
        if (got == 0) return Status::Corruption(path_ + ": unexpected end of file");
        offset_ += got;
        dst += got;
        n -= got;
        continue;
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(1 << 20, size_ - offset_));
      buf_.resize(want);
      VARVE_ASSIGN_OR_RETURN(size_t got, file_->Read(offset_, want, buf_.data()));
      if (got == 0) return Status::Corruption(path_ + ": unexpected end of file");
      buf_.resize(got);
      offset_ += got;
      pos_ = 0;
    }
    size_t take = std::min(n, buf_.size() - pos_);
    std::memcpy(dst, buf_.data() + pos_, take);
    pos_ += take;
    dst += take;
    n -= take;
  }
  return Status::Ok();
}

}  // namespace varve::table
