/*
 * yardstick: the protocol of proto.go (bus(5), "The race-free protocol") in
 * C, for the benchmarks (bench_test.go) to measure bus against in one run.
 * The same semop groups as proto.go, group for group, so that the benchmark
 * compares like with like: the writer takes X with { X -1 UNDO, W 0 } (a
 * join then waits its turn behind streaming writers), closes the gate in
 * the publish call { W 0, Q +1, N +1 UNDO }, and re-releases (Q := 0) from
 * 100 us, doubling to 16 ms, while it waits for S = 0. No timeouts, no
 * give-up: the benchmarks never need them.
 *
 *   cc -O2 -o yardstick testdata/yardstick.c
 *   yardstick listen PATH        receive until the message "0 stop", then
 *                                print how many came before it
 *   yardstick write PATH N       broadcast N messages back to back, then
 *                                "0 stop"; print the time per message
 *   yardstick send PATH MESSAGE  broadcast one message (a one-shot)
 *   yardstick create PATH        make a bus as libbus's bus_create does,
 *                                step for step (for security_test.go:
 *                                such a bus passes bus's ownership check)
 *
 * PATH is a bus file (two decimal keys, semaphores then memory), as made by
 * `bus create`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

/* The semaphores' order is the file format's. */
enum { S, W, X, Q, N, NSEMS };
enum { SEGMENT = 2048 };

static int sems;
static char *seg;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* group applies one atomic semop group, again after a signal. */
static void
group(struct sembuf *ops, size_t n)
{
	while (semop(sems, ops, n) == -1)
		if (errno != EINTR)
			die("yardstick: semop");
}

static void
setq0(void)
{
	if (semctl(sems, Q, SETVAL, 0) == -1)
		die("yardstick: semctl SETVAL");
}

static void
attach(const char *path, int listener)
{
	long semkey, shmkey;
	int shm;
	FILE *f = fopen(path, "r");

	if (!f || fscanf(f, "%ld\n%ld\n", &semkey, &shmkey) != 2) {
		fprintf(stderr, "yardstick: %s: not a bus file\n", path);
		exit(1);
	}
	fclose(f);
	if ((sems = semget((key_t)semkey, NSEMS, 0)) == -1)
		die("yardstick: semget");
	if ((shm = shmget((key_t)shmkey, SEGMENT, 0)) == -1)
		die("yardstick: shmget");
	seg = shmat(shm, NULL, listener ? SHM_RDONLY : 0);
	if (seg == (void *)-1)
		die("yardstick: shmat");
}

/* broadcast: proto.go's Broadcast without a deadline. */
static void
broadcast(const char *msg)
{
	struct sembuf take[] = {{X, -1, SEM_UNDO}, {W, 0, 0}};
	struct sembuf publish[] = {{W, 0, 0}, {Q, 1, 0}, {N, 1, SEM_UNDO}};
	struct sembuf finish[] = {{S, 0, 0}, {N, -1, SEM_UNDO}, {X, 1, SEM_UNDO}};
	long wait = 100000; /* ns: the first re-release, doubling to 16 ms */
	struct timespec ts;
	size_t n = strlen(msg);

	if (n > SEGMENT - 1)
		n = SEGMENT - 1;
	group(take, 2);
	group(publish, 3);
	memcpy(seg, msg, n);
	seg[n] = 0;
	setq0();
	for (;;) {
		ts.tv_sec = wait / 1000000000;
		ts.tv_nsec = wait % 1000000000;
		if (semtimedop(sems, finish, 3, &ts) == 0)
			return;
		if (errno == EAGAIN) {
			setq0(); /* release a listener that armed late (a C tool's) */
			wait = wait * 2 > 16000000 ? 16000000 : wait * 2;
		} else if (errno != EINTR)
			die("yardstick: semtimedop");
	}
}

/* listen: proto.go's Join, then Next and Stay (Leave at the stop message). */
static long
listen(void)
{
	struct sembuf join[] = {{X, -1, 0}, {X, 1, 0}, {W, 0, 0}, {S, 1, SEM_UNDO}, {Q, 1, SEM_UNDO}};
	struct sembuf released[] = {{Q, 0, 0}, {W, 1, SEM_UNDO}};
	struct sembuf count_out[] = {{S, -1, SEM_UNDO}};
	struct sembuf rearm[] = {{N, 0, 0}, {S, 1, SEM_UNDO}, {Q, 1, SEM_UNDO}, {W, -1, SEM_UNDO}};
	struct sembuf leave[] = {{S, -1, SEM_UNDO}, {W, -1, SEM_UNDO}};
	char buf[SEGMENT];
	long count = 0;

	group(join, 5);
	for (;;) {
		group(released, 2);
		memcpy(buf, seg, sizeof buf);
		buf[sizeof buf - 1] = 0; /* never trust the segment */
		if (strcmp(buf, "0 stop") == 0) {
			group(leave, 2);
			return count;
		}
		count++;
		group(count_out, 1);
		group(rearm, 4);
	}
}

/*
 * create makes a bus as libbus's bus_create does: the file first, with
 * O_CREAT | O_EXCL and mode 0600, then the semaphores (IPC_CREAT |
 * IPC_EXCL, mode 0600, a key of rand() scaled to 1..2^30-1) set with SETALL
 * (X = 1, the rest 0), then the segment (2048 bytes, the same flags), and
 * the keys written to the file as "%zi\n%zi\n". One user makes all three.
 */
static int
create(const char *path)
{
	unsigned short vals[NSEMS] = {0};
	char buf[64];
	key_t ksem, kshm;
	int fd, id;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd == -1)
		die("yardstick: open");
	srand((unsigned)time(NULL) + (unsigned)rand() + (unsigned)getpid());
	for (;;) {
		ksem = (key_t)((double)rand() / ((double)RAND_MAX + 1) * ((1 << 30) - 1)) + 1;
		if ((id = semget(ksem, NSEMS, IPC_CREAT | IPC_EXCL | 0600)) != -1)
			break;
		if (errno != EEXIST && errno != EINTR)
			die("yardstick: semget");
	}
	vals[X] = 1;
	if (semctl(id, 0, SETALL, vals) == -1)
		die("yardstick: semctl SETALL");
	for (;;) {
		kshm = (key_t)((double)rand() / ((double)RAND_MAX + 1) * ((1 << 30) - 1)) + 1;
		if (shmget(kshm, SEGMENT, IPC_CREAT | IPC_EXCL | 0600) != -1)
			break;
		if (errno != EEXIST && errno != EINTR)
			die("yardstick: shmget");
	}
	snprintf(buf, sizeof buf, "%zi\n%zi\n", (ssize_t)ksem, (ssize_t)kshm);
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || close(fd) == -1)
		die("yardstick: write");
	return 0;
}

int
main(int argc, char *argv[])
{
	struct timespec t0, t1;
	char msg[64];
	long i, n;
	double secs;

	if (argc == 3 && strcmp(argv[1], "listen") == 0) {
		attach(argv[2], 1);
		printf("%ld\n", listen());
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "send") == 0) {
		attach(argv[2], 0);
		broadcast(argv[3]);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "write") == 0) {
		attach(argv[2], 0);
		n = atol(argv[3]);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; i < n; i++) {
			snprintf(msg, sizeof msg, "%ld msg %ld", (long)getpid(), i);
			broadcast(msg);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		broadcast("0 stop");
		secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		printf("%ld msgs in %.3f s: %.1f us/msg\n", n, secs, secs / (double)n * 1e6);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "create") == 0)
		return create(argv[2]);
	fprintf(stderr, "usage: yardstick listen PATH | write PATH N | send PATH MESSAGE | create PATH\n");
	return 2;
}
