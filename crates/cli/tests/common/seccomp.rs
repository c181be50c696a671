//! Running ringd as if on an older kernel, or in a container whose seccomp filter refuses newer
//! system calls: a small C wrapper (compiled once per test binary with `cc`) installs a seccomp
//! filter and then executes the command. Its children inherit the filter, so every thread of
//! ringd sees the calls refused with the errors an older kernel gives.
//!
//! Three kinds of rule:
//! - `--deny NR=ERRNO`: system call `NR` fails with `ERRNO` (e.g. `cachestat`, 451, with `ENOSYS`
//!   as before Linux 6.5, or as a container's filter answers for a call it does not know);
//! - `--deny-register OPCODE=ERRNO`: `io_uring_register` with that opcode fails (e.g.
//!   `IORING_REGISTER_PBUF_RING`, 22, with `EINVAL`, as before Linux 5.19);
//! - `--deny-setup-flags MASK=ERRNO`: `io_uring_setup` fails when its parameters ask for any of
//!   the flags in `MASK` (e.g. `COOP_TASKRUN | SINGLE_ISSUER` with `EINVAL`, as before 5.19 and
//!   6.0). The flags are behind a pointer, which a filter cannot read, so this rule sends the call
//!   to a supervisor process (`SECCOMP_RET_USER_NOTIF`, Linux 5.0; `CONTINUE`, 5.5) that reads
//!   them from the caller's memory and answers: the error, or "carry on". With `--log FILE` the
//!   supervisor writes one line per call it decided (`setup flags=0x... -> EINVAL|allowed`).
//!
//! Before it executes the command, the wrapper checks each `--deny`/`--deny-register` rule by
//! making the call with arguments that would fail otherwise (a bad descriptor): only the filter
//! gives the configured error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::{require_tool, run_bounded};

/// `__NR_cachestat`: one number on every architecture (new system calls share the table).
pub const CACHESTAT: u32 = 451;
/// `IORING_REGISTER_PBUF_RING`.
pub const REGISTER_PBUF_RING: u32 = 22;
/// `IORING_SETUP_COOP_TASKRUN` (5.19) and `IORING_SETUP_SINGLE_ISSUER` (6.0).
pub const SETUP_COOP_TASKRUN: u32 = 1 << 8;
pub const SETUP_SINGLE_ISSUER: u32 = 1 << 12;

const WRAPPER_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#define NR_IO_URING_SETUP 425
#define NR_IO_URING_REGISTER 427
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#define NR_IO_URING_SETUP 425
#define NR_IO_URING_REGISTER 427
#else
#error "unsupported architecture"
#endif

#define MAX_RULES 16
struct rule { unsigned nr, value, err; };
static struct rule denies[MAX_RULES], registers[MAX_RULES];
static int ndenies, nregisters;
static unsigned setup_mask, setup_err;
static const char *logpath;

static int usage(const char *me) {
    fprintf(stderr, "usage: %s [--deny NR=ERRNO] [--deny-register OPCODE=ERRNO] "
                    "[--deny-setup-flags MASK=ERRNO [--log FILE]] -- PROG ARGS...\n", me);
    return 125;
}

static int parse(const char *s, unsigned *a, unsigned *b) {
    char *end;
    *a = (unsigned)strtoul(s, &end, 0);
    if (*end != '=') return -1;
    *b = (unsigned)strtoul(end + 1, &end, 0);
    return *end ? -1 : 0;
}

/* The user-notification supervisor: answers io_uring_setup calls that ask for masked flags. */
static void supervise(int listener) {
    FILE *log = logpath ? fopen(logpath, "a") : NULL;
    if (logpath && !log) { perror("supervisor: log"); _exit(1); }
    if (log) setvbuf(log, NULL, _IOLBF, 0);
    struct seccomp_notif *req = calloc(1, 4096);
    struct seccomp_notif_resp *resp = calloc(1, 4096);
    for (;;) {
        struct pollfd p = { listener, POLLIN, 0 };
        if (poll(&p, 1, -1) < 0) { if (errno == EINTR) continue; break; }
        /* Every process under the filter has exited. */
        if (p.revents & (POLLHUP | POLLERR)) break;
        memset(req, 0, sizeof *req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
            if (errno == EINTR || errno == ENOENT) continue;
            break;
        }
        memset(resp, 0, sizeof *resp);
        resp->id = req->id;
        /* struct io_uring_params: sq_entries, cq_entries, flags (u32 each). */
        uint32_t head[3] = {0, 0, 0};
        char mem[64];
        snprintf(mem, sizeof mem, "/proc/%u/mem", req->pid);
        int fd = open(mem, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? pread(fd, head, sizeof head, (off_t)req->data.args[1]) : -1;
        if (fd >= 0) close(fd);
        /* The caller must still be waiting for this answer for what was read to be its own. */
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) continue;
        if (got == (ssize_t)sizeof head && (head[2] & setup_mask)) {
            resp->error = -(int)setup_err;
            if (log) fprintf(log, "setup flags=0x%x -> errno %u\n", head[2], setup_err);
        } else {
            resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            if (log) fprintf(log, "setup flags=0x%x -> allowed\n", got == (ssize_t)sizeof head ? head[2] : 0);
        }
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    _exit(0);
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc; i++) {
        unsigned a, b;
        if (!strcmp(argv[i], "--")) { i++; break; }
        if (i + 1 >= argc) return usage(argv[0]);
        if (!strcmp(argv[i], "--deny") && ndenies < MAX_RULES && !parse(argv[i + 1], &a, &b)) {
            denies[ndenies++] = (struct rule){ a, 0, b };
        } else if (!strcmp(argv[i], "--deny-register") && nregisters < MAX_RULES && !parse(argv[i + 1], &a, &b)) {
            registers[nregisters++] = (struct rule){ NR_IO_URING_REGISTER, a, b };
        } else if (!strcmp(argv[i], "--deny-setup-flags") && !parse(argv[i + 1], &a, &b)) {
            setup_mask = a; setup_err = b;
        } else if (!strcmp(argv[i], "--log")) {
            logpath = argv[i + 1];
        } else {
            return usage(argv[0]);
        }
        i++;
    }
    if (i >= argc) return usage(argv[0]);

    struct sock_filter f[4 + 2 * MAX_RULES + 5 * MAX_RULES + 2 + 1];
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (int r = 0; r < ndenies; r++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, denies[r].nr, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (denies[r].err & SECCOMP_RET_DATA));
    }
    for (int r = 0; r < nregisters; r++) {
        /* nr == io_uring_register && (u32)args[1] == opcode: the error. A is nr again after. */
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_REGISTER, 0, 3);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]));
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, registers[r].value, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (registers[r].err & SECCOMP_RET_DATA));
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    }
    if (setup_mask) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_SETUP, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = { (unsigned short)n, f };

    /* The supervisor is forked before the filter exists (it must not be under it, or the filter
       would never lose its last user); it gets the listener through a socket. */
    int sv[2] = { -1, -1 };
    pid_t supervisor = -1;
    if (setup_mask) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) { perror("socketpair"); return 120; }
        supervisor = fork();
        if (supervisor < 0) { perror("fork"); return 120; }
        if (supervisor == 0) {
            close(sv[0]);
            char byte; char ctl[CMSG_SPACE(sizeof(int))];
            struct iovec iov = { &byte, 1 };
            struct msghdr m = { 0 };
            m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = ctl; m.msg_controllen = sizeof ctl;
            if (recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC) != 1) _exit(1);
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            if (!c || c->cmsg_type != SCM_RIGHTS) _exit(1);
            int listener; memcpy(&listener, CMSG_DATA(c), sizeof listener);
            close(sv[1]);
            supervise(listener);
        }
        close(sv[1]);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) { perror("prctl(NO_NEW_PRIVS)"); return 120; }
    long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                            setup_mask ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
    if (listener < 0) { perror("seccomp(SET_MODE_FILTER)"); return 121; }
    if (setup_mask) {
        char byte = 0; char ctl[CMSG_SPACE(sizeof(int))];
        memset(ctl, 0, sizeof ctl);
        struct iovec iov = { &byte, 1 };
        struct msghdr m = { 0 };
        m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = ctl; m.msg_controllen = sizeof ctl;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
        int l = (int)listener; memcpy(CMSG_DATA(c), &l, sizeof l);
        if (sendmsg(sv[0], &m, 0) != 1) { perror("sendmsg(listener)"); return 120; }
        close(sv[0]);
        close((int)listener);
    }
    /* Self-check: each rule answers with its error (otherwise -1 would be EBADF). */
    for (int r = 0; r < ndenies; r++) {
        errno = 0;
        long rc = syscall(denies[r].nr, -1L, 0L, 0L, 0L);
        if (rc != -1 || (unsigned)errno != denies[r].err) {
            fprintf(stderr, "seccomp self-check: syscall %u gave %ld (errno %d), not errno %u\n",
                    denies[r].nr, rc, errno, denies[r].err);
            return 122;
        }
    }
    for (int r = 0; r < nregisters; r++) {
        errno = 0;
        long rc = syscall(NR_IO_URING_REGISTER, -1L, (long)registers[r].value, 0L, 0L);
        if (rc != -1 || (unsigned)errno != registers[r].err) {
            fprintf(stderr, "seccomp self-check: io_uring_register opcode %u gave %ld (errno %d), not errno %u\n",
                    registers[r].value, rc, errno, registers[r].err);
            return 122;
        }
    }
    execvp(argv[i], argv + i);
    perror("execvp");
    return 123;
}
"#;

/// The compiled wrapper, built once per test binary (in the target's temporary directory).
fn wrapper() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        require_tool("cc", "gcc");
        // The target's scratch directory, unless this user may not write there (test binaries
        // built by another user): then the system's temporary directory.
        let name = format!("ringd-seccomp-{}", std::process::id());
        let mut dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        if std::fs::write(dir.join(format!("{name}.c")), WRAPPER_C).is_err() {
            dir = std::env::temp_dir();
            std::fs::write(dir.join(format!("{name}.c")), WRAPPER_C).unwrap();
        }
        // Per process: test binaries running at once must not write the same file.
        let src = dir.join(format!("{name}.c"));
        let exe = dir.join(name);
        let cc = run_bounded(
            Command::new("cc").arg("-O1").arg("-Wall").arg("-o").arg(&exe).arg(&src),
            Duration::from_secs(60),
        );
        cc.assert_success("compiling the seccomp wrapper (cc, with linux-libc-dev's headers)");
        let _ = std::fs::remove_file(&src);
        exe
    })
}

/// What to refuse, built up rule by rule; [`Filter::command`] gives the wrapper's argv prefix.
#[derive(Default, Clone)]
pub struct Filter {
    args: Vec<String>,
}

impl Filter {
    pub fn new() -> Filter {
        Filter::default()
    }

    /// System call `nr` fails with `errno`.
    pub fn deny(mut self, nr: u32, errno: i32) -> Filter {
        self.args.extend(["--deny".to_owned(), format!("{nr}={errno}")]);
        self
    }

    /// `io_uring_register(_, opcode, ...)` fails with `errno`.
    pub fn deny_register(mut self, opcode: u32, errno: i32) -> Filter {
        self.args
            .extend(["--deny-register".to_owned(), format!("{opcode}={errno}")]);
        self
    }

    /// `io_uring_setup` fails with `errno` when it asks for any flag in `mask`; the supervisor
    /// logs each decision to `log`.
    pub fn deny_setup_flags(mut self, mask: u32, errno: i32, log: &Path) -> Filter {
        self.args.extend([
            "--deny-setup-flags".to_owned(),
            format!("{mask:#x}={errno}"),
            "--log".to_owned(),
            log.to_str().unwrap().to_owned(),
        ]);
        self
    }

    /// As before Linux 6.5 (or in a container whose filter does not know the call):
    /// `cachestat` is `ENOSYS`.
    pub fn without_cachestat(self) -> Filter {
        self.deny(CACHESTAT, libc::ENOSYS)
    }

    /// As before Linux 5.19: registering a provided-buffer ring is `EINVAL`.
    pub fn without_provided_buffer_rings(self) -> Filter {
        self.deny_register(REGISTER_PBUF_RING, libc::EINVAL)
    }

    /// The wrapper and its arguments, to put before the command (e.g. for
    /// [`Server::start_wrapped`](super::Server::start_wrapped)).
    pub fn command(&self) -> Vec<String> {
        let mut argv = vec![wrapper().to_str().unwrap().to_owned()];
        argv.extend(self.args.iter().cloned());
        argv.push("--".to_owned());
        argv
    }
}

impl Filter {
    /// [`Server::start`](super::Server::start) under this filter.
    pub fn start(&self, args: &[&str]) -> super::Server {
        let argv = self.command();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        super::Server::start_wrapped(&argv, args)
    }
}
