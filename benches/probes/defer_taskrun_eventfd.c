// How late does the kernel tell a thread that is NOT waiting in io_uring_enter (tokio parks in
// epoll_wait) about deferred task work? Sets a ring up with DEFER_TASKRUN (argument 2 = 0) or
// COOP_TASKRUN (= 1), arms N receives on socket pairs, registers an eventfd, and waits in
// poll(2) on the eventfd and the ring's descriptor while another thread writes one byte to each
// pair; prints how long after the write the poll returned.
//
//   cc -O2 -pthread -o /tmp/defer_taskrun_eventfd benches/probes/defer_taskrun_eventfd.c
//   /tmp/defer_taskrun_eventfd 5 0    # DEFER_TASKRUN: 13-33 ms on Linux 6.18 here
//   /tmp/defer_taskrun_eventfd 5 1    # COOP_TASKRUN: 0.03-0.1 ms
//
// A third argument polls the eventfd alone, a fourth (with no eventfd registered) the ring's
// descriptor alone (with DEFER_TASKRUN it is never reported: poll times out after 1 s).
// Why ringd does not ask for DEFER_TASKRUN: DESIGN.md ("Ring flags"), benches/results/HISTORY.md.
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>
#include <time.h>
static int ring_fd; static unsigned *sq_tail, *sq_mask, *sq_array, *sq_flags, *cq_head, *cq_tail;
static struct io_uring_sqe *sqes;
static int sv[512][2]; static int n; static int flagsel;
static double now(void);
static volatile double wrote_at;
static void *writer(void *a){ usleep(100000); wrote_at = now(); for (int i=0;i<n;i++) write(sv[i][1],"x",1); return 0; }
static double now(void){ struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec*1e3+t.tv_nsec/1e6; }
int main(int argc, char **argv) {
  n = argc > 1 ? atoi(argv[1]) : 5; flagsel = argc > 2 ? atoi(argv[2]) : 0;
  struct io_uring_params p; memset(&p,0,sizeof p);
  p.flags = flagsel==0 ? (IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN|IORING_SETUP_TASKRUN_FLAG)
                       : (IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_COOP_TASKRUN|IORING_SETUP_TASKRUN_FLAG);
  ring_fd = syscall(__NR_io_uring_setup, 256, &p); if (ring_fd<0){perror("setup");return 1;}
  size_t sqsz = p.sq_off.array + p.sq_entries*4, cqsz = p.cq_off.cqes + p.cq_entries*sizeof(struct io_uring_cqe);
  if (cqsz > sqsz) sqsz = cqsz;
  char *sq = mmap(0, sqsz, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  sqes = mmap(0, p.sq_entries*sizeof(struct io_uring_sqe), PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, ring_fd, IORING_OFF_SQES);
  sq_tail=(unsigned*)(sq+p.sq_off.tail); sq_mask=(unsigned*)(sq+p.sq_off.ring_mask); sq_array=(unsigned*)(sq+p.sq_off.array); sq_flags=(unsigned*)(sq+p.sq_off.flags);
  cq_head=(unsigned*)(sq+p.cq_off.head); cq_tail=(unsigned*)(sq+p.cq_off.tail);
  int efd = eventfd(0, EFD_NONBLOCK);
  if (argc > 4) { /* no eventfd: poll the ring alone */ } else if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_EVENTFD, &efd, 1)) {perror("reg");return 1;}
  static char bufs[512][64];
  for (int i=0;i<n;i++){ socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]);
    unsigned t=*sq_tail, idx=t & *sq_mask; struct io_uring_sqe *s=&sqes[idx]; memset(s,0,sizeof *s);
    s->opcode=IORING_OP_RECV; s->fd=sv[i][0]; s->addr=(unsigned long)bufs[i]; s->len=64; s->user_data=i;
    sq_array[idx]=idx; atomic_store((_Atomic unsigned*)sq_tail, t+1); }
  syscall(__NR_io_uring_enter, ring_fd, n, 0, 0, 0, 0);
  pthread_t th; pthread_create(&th,0,writer,0);
  struct pollfd pf[2]={{efd,POLLIN,0},{ring_fd,POLLIN,0}};
  int pr = argc > 4 ? poll(pf+1, 1, 1000) : poll(pf, argc > 3 ? 1 : 2, 1000);
  double t1=now(); printf("poll -> %d, %.3f ms after the write; : eventfd revents %#x, ring revents %#x, TASKRUN %d\n", pr, t1-wrote_at, pf[0].revents, pf[1].revents, !!(*sq_flags&IORING_SQ_TASKRUN));
  pthread_join(th,0); return 0;
}
