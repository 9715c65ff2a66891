// svnic's native addon: thin wrappers over Linux system calls that Node cannot make itself.
//
// Contract (see src/native/index.ts for the typed wrapper):
// - No policy lives here: every function is one or two syscalls plus argument conversion.
// - Control-plane calls throw an Error whose `code` is the errno name (e.g. "ENOENT").
// - Data-path calls (accept, recvMsg, sendMsg, poll, read, write, eventfdRead/Write) never throw on
//   a syscall failure: they return -errno, so callers can count the failure and go on.
// - Every file descriptor created here is close-on-exec. Sockets are non-blocking.
// - mmapShared returns a real SharedArrayBuffer over a MAP_SHARED mapping (V8's backing store API;
//   Node-API can only make non-shared buffers). The mapping is unmapped when the last reference to
//   the backing store (in any worker) is collected.
//
// The addon is context-aware (NODE_MODULE_INIT) so worker threads can load it.

#include <node.h>
#include <v8.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

using v8::Array;
using v8::ArrayBufferView;
using v8::BackingStore;
using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::Int16Array;
using v8::Int32Array;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

constexpr int kMaxFds = 64;      // upper bound on fds taken from one message
constexpr int kMaxPollFds = 4096;

Local<String> Str(Isolate* iso, const char* s) {
  return String::NewFromUtf8(iso, s).ToLocalChecked();
}

// Throws Error(`${what}: ${strerror}`) with .code = errno name and .errno = number.
void ThrowErrno(Isolate* iso, const char* what, int err) {
  std::string msg = std::string(what) + ": " + strerror(err);
  Local<Value> e = Exception::Error(Str(iso, msg.c_str()));
  Local<Context> ctx = iso->GetCurrentContext();
  const char* name = strerrorname_np(err);
  e.As<Object>()->Set(ctx, Str(iso, "code"), Str(iso, name ? name : "EUNKNOWN")).Check();
  e.As<Object>()->Set(ctx, Str(iso, "errno"), Integer::New(iso, err)).Check();
  iso->ThrowException(e);
}

void ThrowType(Isolate* iso, const char* msg) {
  iso->ThrowException(Exception::TypeError(Str(iso, msg)));
}

bool IntArg(const FunctionCallbackInfo<Value>& a, int i, int64_t* out) {
  if (a.Length() <= i || !a[i]->IsNumber()) return false;
  double d = a[i].As<Number>()->Value();
  if (d != d || d < -9007199254740991.0 || d > 9007199254740991.0) return false;
  *out = static_cast<int64_t>(d);
  return static_cast<double>(*out) == d;
}

// Resolves a Uint8Array (or any ArrayBufferView) argument to its bytes.
bool BytesArg(const FunctionCallbackInfo<Value>& a, int i, uint8_t** data, size_t* len) {
  if (a.Length() <= i || !a[i]->IsArrayBufferView()) return false;
  Local<ArrayBufferView> v = a[i].As<ArrayBufferView>();
  std::shared_ptr<BackingStore> bs = v->Buffer()->GetBackingStore();
  *data = static_cast<uint8_t*>(bs->Data()) + v->ByteOffset();
  *len = v->ByteLength();
  return true;
}

void Ret(const FunctionCallbackInfo<Value>& a, double v) {
  a.GetReturnValue().Set(Number::New(a.GetIsolate(), v));
}

#define INT_ARG(idx, name)                                   \
  int64_t name;                                              \
  if (!IntArg(a, idx, &name)) {                              \
    ThrowType(iso, "argument " #idx " (" #name ") must be an integer"); \
    return;                                                  \
  }

bool FillUnixAddr(Isolate* iso, Local<Value> v, sockaddr_un* sa) {
  String::Utf8Value path(iso, v);
  if (*path == nullptr || path.length() == 0 || static_cast<size_t>(path.length()) >= sizeof(sa->sun_path)) {
    ThrowType(iso, "unix socket path must be a non-empty string shorter than 108 bytes");
    return false;
  }
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, *path, path.length());
  return true;
}

// unixListen(path, backlog): fd
void UnixListen(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  sockaddr_un sa;
  if (a.Length() < 1 || !FillUnixAddr(iso, a[0], &sa)) return;
  INT_ARG(1, backlog);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(iso, "socket", errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0 || listen(fd, static_cast<int>(backlog)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(iso, "bind/listen", err);
  }
  Ret(a, fd);
}

// unixConnect(path): fd (connected, then non-blocking)
void UnixConnect(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  sockaddr_un sa;
  if (a.Length() < 1 || !FillUnixAddr(iso, a[0], &sa)) return;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(iso, "socket", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(iso, "connect", err);
  }
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  Ret(a, fd);
}

// socketpair(): [fd, fd], non-blocking unix stream sockets
void SocketPair(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    return ThrowErrno(iso, "socketpair", errno);
  }
  Local<Array> r = Array::New(iso, 2);
  r->Set(iso->GetCurrentContext(), 0, Integer::New(iso, sv[0])).Check();
  r->Set(iso->GetCurrentContext(), 1, Integer::New(iso, sv[1])).Check();
  a.GetReturnValue().Set(r);
}

// accept(fd): fd | -errno
void Accept(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  int c = accept4(static_cast<int>(fd), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  Ret(a, c < 0 ? -errno : c);
}

// recvMsg(fd, buf, fdsOut: Int32Array): { bytes, nfds } | -errno
// bytes == 0 means the peer closed. nfds == -1 means the kernel truncated the control data
// (MSG_CTRUNC) or more fds arrived than fdsOut holds: every received fd has then been closed.
void RecvMsg(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  uint8_t* data;
  size_t len;
  if (!BytesArg(a, 1, &data, &len)) return ThrowType(iso, "argument 1 (buf) must be a Uint8Array");
  if (a.Length() < 3 || !a[2]->IsInt32Array()) return ThrowType(iso, "argument 2 (fdsOut) must be an Int32Array");
  Local<Int32Array> fdsOut = a[2].As<Int32Array>();
  size_t maxFds = fdsOut->Length();

  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(static_cast<int>(fd), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Ret(a, -errno);

  std::vector<int> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int* p = reinterpret_cast<int*>(CMSG_DATA(c));
    for (size_t i = 0; i < count; i++) got.push_back(p[i]);
  }
  int nfds = static_cast<int>(got.size());
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || got.size() > maxFds) {
    for (int f : got) close(f);
    nfds = -1;
  } else {
    std::shared_ptr<BackingStore> bs = fdsOut->Buffer()->GetBackingStore();
    int32_t* out = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(bs->Data()) + fdsOut->ByteOffset());
    for (size_t i = 0; i < got.size(); i++) out[i] = got[i];
  }
  Local<Context> ctx = iso->GetCurrentContext();
  Local<Object> r = Object::New(iso);
  r->Set(ctx, Str(iso, "bytes"), Number::New(iso, static_cast<double>(n))).Check();
  r->Set(ctx, Str(iso, "nfds"), Integer::New(iso, nfds)).Check();
  a.GetReturnValue().Set(r);
}

// sendMsg(fd, buf, len, fds?: number[]): bytes | -errno
void SendMsg(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  uint8_t* data;
  size_t cap;
  if (!BytesArg(a, 1, &data, &cap)) return ThrowType(iso, "argument 1 (buf) must be a Uint8Array");
  INT_ARG(2, len);
  if (len < 0 || static_cast<size_t>(len) > cap) return ThrowType(iso, "len is outside buf");
  std::vector<int> fds;
  if (a.Length() > 3 && a[3]->IsArray()) {
    Local<Array> arr = a[3].As<Array>();
    Local<Context> ctx = iso->GetCurrentContext();
    for (uint32_t i = 0; i < arr->Length() && i < kMaxFds; i++) {
      Local<Value> v = arr->Get(ctx, i).ToLocalChecked();
      if (!v->IsInt32()) return ThrowType(iso, "fds must be integers");
      fds.push_back(v.As<Integer>()->Value());
    }
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec iov{data, static_cast<size_t>(len)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(static_cast<int>(fd), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  Ret(a, n < 0 ? -errno : static_cast<double>(n));
}

// poll(fds: Int32Array, events: Int16Array, revents: Int16Array, n, timeoutMs): ready | -errno
void Poll(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  if (a.Length() < 3 || !a[0]->IsInt32Array() || !a[1]->IsInt16Array() || !a[2]->IsInt16Array()) {
    return ThrowType(iso, "poll(fds: Int32Array, events: Int16Array, revents: Int16Array, n, timeoutMs)");
  }
  INT_ARG(3, n);
  INT_ARG(4, timeoutMs);
  Local<Int32Array> fds = a[0].As<Int32Array>();
  Local<Int16Array> ev = a[1].As<Int16Array>();
  Local<Int16Array> rev = a[2].As<Int16Array>();
  if (n < 0 || n > kMaxPollFds || static_cast<size_t>(n) > fds->Length() ||
      static_cast<size_t>(n) > ev->Length() || static_cast<size_t>(n) > rev->Length()) {
    return ThrowType(iso, "poll: n exceeds an array's length (or 4096)");
  }
  auto base = [](Local<ArrayBufferView> v) {
    return static_cast<uint8_t*>(v->Buffer()->GetBackingStore()->Data()) + v->ByteOffset();
  };
  int32_t* f = reinterpret_cast<int32_t*>(base(fds));
  int16_t* e = reinterpret_cast<int16_t*>(base(ev));
  int16_t* r = reinterpret_cast<int16_t*>(base(rev));
  std::vector<pollfd> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) p[i] = pollfd{f[i], e[i], 0};
  int rc = poll(p.data(), static_cast<nfds_t>(n), static_cast<int>(timeoutMs));
  if (rc < 0) return Ret(a, -errno);
  for (int64_t i = 0; i < n; i++) r[i] = p[i].revents;
  Ret(a, rc);
}

// eventfd(initval, nonblock): fd
void EventFd(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, initval);
  bool nonblock = a.Length() > 1 && a[1]->BooleanValue(iso);
  int fd = eventfd(static_cast<unsigned>(initval), EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));
  if (fd < 0) return ThrowErrno(iso, "eventfd", errno);
  Ret(a, fd);
}

// eventfdWrite(fd, value): 0 | -errno
void EventFdWrite(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  INT_ARG(1, value);
  uint64_t v = static_cast<uint64_t>(value);
  ssize_t n = write(static_cast<int>(fd), &v, sizeof(v));
  Ret(a, n == sizeof(v) ? 0 : (n < 0 ? -errno : -EIO));
}

// eventfdRead(fd): value | -errno (the counter, reset to 0 by the read)
void EventFdRead(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  uint64_t v = 0;
  ssize_t n = read(static_cast<int>(fd), &v, sizeof(v));
  Ret(a, n == sizeof(v) ? static_cast<double>(v) : (n < 0 ? -errno : -EIO));
}

// memfdCreate(name, size): fd
void MemfdCreate(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  String::Utf8Value name(iso, a[0]);
  INT_ARG(1, size);
  int fd = memfd_create(*name ? *name : "svnic", MFD_CLOEXEC);
  if (fd < 0) return ThrowErrno(iso, "memfd_create", errno);
  if (ftruncate(fd, static_cast<off_t>(size)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(iso, "ftruncate", err);
  }
  Ret(a, fd);
}

// mmapShared(fd, length, offset): SharedArrayBuffer
void MmapShared(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  INT_ARG(1, length);
  INT_ARG(2, offset);
  if (length <= 0) return ThrowType(iso, "mmapShared: length must be positive");
  if (offset < 0 || offset % sysconf(_SC_PAGESIZE) != 0) {
    return ThrowType(iso, "mmapShared: offset must be a non-negative multiple of the page size");
  }
  // A mapping that reaches past the end of a regular file (memfd, hugetlbfs, tmpfs) maps fine but
  // raises SIGBUS, killing the whole process, on the first touch beyond the end: refuse it here, so
  // a peer that sends a small fd with a large region size gets an error instead (vhost-user).
  struct stat st;
  if (fstat(static_cast<int>(fd), &st) < 0) return ThrowErrno(iso, "fstat", errno);
  if (S_ISREG(st.st_mode) && offset + length > st.st_size) {
    return ThrowErrno(iso, "mmap past the end of the file", EOVERFLOW);
  }
  void* p = mmap(nullptr, static_cast<size_t>(length), PROT_READ | PROT_WRITE, MAP_SHARED,
                 static_cast<int>(fd), static_cast<off_t>(offset));
  if (p == MAP_FAILED) return ThrowErrno(iso, "mmap", errno);
  std::unique_ptr<BackingStore> bs = SharedArrayBuffer::NewBackingStore(
      p, static_cast<size_t>(length), [](void* data, size_t len, void*) { munmap(data, len); }, nullptr);
  a.GetReturnValue().Set(SharedArrayBuffer::New(iso, std::move(bs)));
}

// read(fd, buf, off, len): n | -errno
void Read(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  uint8_t* data;
  size_t cap;
  if (!BytesArg(a, 1, &data, &cap)) return ThrowType(iso, "argument 1 (buf) must be a Uint8Array");
  INT_ARG(2, off);
  INT_ARG(3, len);
  if (off < 0 || len < 0 || static_cast<size_t>(off + len) > cap) return Ret(a, -EFAULT);
  ssize_t n;
  do {
    n = read(static_cast<int>(fd), data + off, static_cast<size_t>(len));
  } while (n < 0 && errno == EINTR);
  Ret(a, n < 0 ? -errno : static_cast<double>(n));
}

// write(fd, buf, off, len): n | -errno
void Write(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  uint8_t* data;
  size_t cap;
  if (!BytesArg(a, 1, &data, &cap)) return ThrowType(iso, "argument 1 (buf) must be a Uint8Array");
  INT_ARG(2, off);
  INT_ARG(3, len);
  if (off < 0 || len < 0 || static_cast<size_t>(off + len) > cap) return Ret(a, -EFAULT);
  ssize_t n;
  do {
    n = write(static_cast<int>(fd), data + off, static_cast<size_t>(len));
  } while (n < 0 && errno == EINTR);
  Ret(a, n < 0 ? -errno : static_cast<double>(n));
}

// setNonBlocking(fd, on): void
void SetNonBlocking(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  bool on = a.Length() > 1 && a[1]->BooleanValue(iso);
  int fl = fcntl(static_cast<int>(fd), F_GETFL);
  if (fl < 0 || fcntl(static_cast<int>(fd), F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) < 0) {
    return ThrowErrno(iso, "fcntl", errno);
  }
}

// close(fd): void
void Close(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  INT_ARG(0, fd);
  if (close(static_cast<int>(fd)) < 0 && errno != EINTR) return ThrowErrno(iso, "close", errno);
}

// tunOpen(name, tap): { fd, name } — /dev/net/tun with TUNSETIFF, IFF_NO_PI, non-blocking.
void TunOpen(const FunctionCallbackInfo<Value>& a) {
  Isolate* iso = a.GetIsolate();
  String::Utf8Value name(iso, a[0]);
  bool tap = a.Length() > 1 && a[1]->BooleanValue(iso);
  if (*name == nullptr || static_cast<size_t>(name.length()) >= IFNAMSIZ) {
    return ThrowType(iso, "tunOpen: interface name must be shorter than 16 bytes");
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(iso, "open /dev/net/tun", errno);
  ifreq ifr{};
  ifr.ifr_flags = static_cast<short>((tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI);
  memcpy(ifr.ifr_name, *name, name.length());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(iso, "ioctl TUNSETIFF", err);
  }
  Local<Context> ctx = iso->GetCurrentContext();
  Local<Object> r = Object::New(iso);
  r->Set(ctx, Str(iso, "fd"), Integer::New(iso, fd)).Check();
  r->Set(ctx, Str(iso, "name"), Str(iso, ifr.ifr_name)).Check();
  a.GetReturnValue().Set(r);
}

// threadCpuNs(): CPU time of the calling thread in nanoseconds
void ThreadCpuNs(const FunctionCallbackInfo<Value>& a) {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  Ret(a, static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec));
}

void SetConst(Local<Context> ctx, Local<Object> exports, const char* name, int v) {
  Isolate* iso = ctx->GetIsolate();
  exports->Set(ctx, Str(iso, name), Integer::New(iso, v)).Check();
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  NODE_SET_METHOD(exports, "unixListen", UnixListen);
  NODE_SET_METHOD(exports, "unixConnect", UnixConnect);
  NODE_SET_METHOD(exports, "socketpair", SocketPair);
  NODE_SET_METHOD(exports, "accept", Accept);
  NODE_SET_METHOD(exports, "recvMsg", RecvMsg);
  NODE_SET_METHOD(exports, "sendMsg", SendMsg);
  NODE_SET_METHOD(exports, "poll", Poll);
  NODE_SET_METHOD(exports, "eventfd", EventFd);
  NODE_SET_METHOD(exports, "eventfdWrite", EventFdWrite);
  NODE_SET_METHOD(exports, "eventfdRead", EventFdRead);
  NODE_SET_METHOD(exports, "memfdCreate", MemfdCreate);
  NODE_SET_METHOD(exports, "mmapShared", MmapShared);
  NODE_SET_METHOD(exports, "read", Read);
  NODE_SET_METHOD(exports, "write", Write);
  NODE_SET_METHOD(exports, "setNonBlocking", SetNonBlocking);
  NODE_SET_METHOD(exports, "close", Close);
  NODE_SET_METHOD(exports, "tunOpen", TunOpen);
  NODE_SET_METHOD(exports, "threadCpuNs", ThreadCpuNs);
  SetConst(context, exports, "POLLIN", POLLIN);
  SetConst(context, exports, "POLLOUT", POLLOUT);
  SetConst(context, exports, "POLLERR", POLLERR);
  SetConst(context, exports, "POLLHUP", POLLHUP);
  SetConst(context, exports, "POLLNVAL", POLLNVAL);
  SetConst(context, exports, "EAGAIN", EAGAIN);
  SetConst(context, exports, "EINTR", EINTR);
  SetConst(context, exports, "EBADF", EBADF);
  SetConst(context, exports, "EFAULT", EFAULT);
  SetConst(context, exports, "EPIPE", EPIPE);
  SetConst(context, exports, "ECONNRESET", ECONNRESET);
}
