package main

// Hostile and careless input: a corpus of bad command lines, bus files,
// objects and segments, each refused with a clear error and the documented
// status, leaving nothing half-made; a segment a peer left without a NUL.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// badInput is one case of TestBadInputCorpus. setup makes what the case
// needs in dir and returns the words to put for {NAME} in args and want.
type badInput struct {
	name   string
	setup  func(t *testing.T, dir string) map[string]string
	args   []string
	stdin  string
	env    []string // more environment
	nobody bool     // run as uid 65534
	// again: the same objects and check as the case before, through
	// another subcommand (emulated runs leave it out).
	again bool
	code  int
	want  string // stderr's first line after "bus: ", exactly; "" for none
}

// rawObjects makes a semaphore array of nsems (X = 1) and, if size > 0, a
// segment of size bytes, with those modes, as uid 0; the test removes them.
func rawObjects(t *testing.T, nsems, size, semPerm, shmPerm int) (sem, shm int32) {
	t.Helper()
	sem, shm = 0x3b000000+int32(rand.IntN(1<<24)), 0x3c000000+int32(rand.IntN(1<<24))
	if nsems > 0 {
		id, e := semget(sem, nsems, ipcCreat|ipcExcl|semPerm)
		if e != 0 {
			t.Fatalf("semget: %v", e)
		}
		t.Cleanup(func() { semctl(id, 0, ipcRmid, 0) })
		if nsems > semX {
			semctl(id, semX, semSetval, 1)
		}
	}
	if size > 0 {
		id, e := shmget(shm, size, ipcCreat|ipcExcl|shmPerm)
		if e != 0 {
			t.Fatalf("shmget: %v", e)
		}
		t.Cleanup(func() { shmctl(id, ipcRmid, nil) })
	}
	return sem, shm
}

// treeState lists everything under dir: name, type, mode, size, target.
func treeState(dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			out = append(out, p+" error "+err.Error())
			return nil
		}
		line := fmt.Sprintf("%s %v %d", p, info.Mode(), info.Size())
		if info.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		if info.Mode().IsRegular() && info.Size() < 4096 {
			data, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", data)
		}
		out = append(out, line)
		return nil
	})
	sort.Strings(out)
	return out
}

// madeBy lists the objects in after but not in before that process pid
// made: a segment it created (cpid), or a semaphore array whose X it set
// (SETVAL records the pid; bus's create sets X to 1). Other processes on
// the machine make and remove objects meanwhile: those are not the case's.
func madeBy(pid int, before, after []string) (out []string) {
	for _, o := range after {
		var kind string
		var key, id int
		if slices.Contains(before, o) {
			continue
		}
		if _, err := fmt.Sscanf(o, "%s key %d id %d", &kind, &key, &id); err != nil {
			continue
		}
		if kind == "shm" {
			if e, ok := procObject(false, int32(key)); ok && e.cpid == int64(pid) {
				out = append(out, o)
			}
		} else if p, e := semctl(id, semX, semGetpid, 0); e == 0 && p == pid {
			out = append(out, o)
		}
	}
	return out
}

// TestBadInputCorpus: bad bus files, objects, messages, modes, owners,
// durations, regexps, fds, operands and flags, end to end. Each exits with
// the right status and one exact line (two for usage), never panics, and
// leaves no file and no IPC object behind, nor changes or takes away one
// of the case's.
func TestBadInputCorpus(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: some cases run as another user, on objects root made")
	}
	file := func(name, data string, mode os.FileMode) func(*testing.T, string) map[string]string {
		return func(t *testing.T, dir string) map[string]string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(data), mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, mode)
			return map[string]string{"P": p}
		}
	}
	keys := func(nsems, size, semPerm, shmPerm int, fileMode os.FileMode) func(*testing.T, string) map[string]string {
		return func(t *testing.T, dir string) map[string]string {
			sem, shm := rawObjects(t, nsems, size, semPerm, shmPerm)
			p := filepath.Join(dir, "objects")
			os.WriteFile(p, formatKeys(sem, shm), fileMode)
			os.Chmod(p, fileMode)
			return map[string]string{"P": p, "SEM": strconv.Itoa(int(sem)), "SHM": strconv.Itoa(int(shm))}
		}
	}
	path := func(name string) func(*testing.T, string) map[string]string {
		return func(t *testing.T, dir string) map[string]string {
			return map[string]string{"P": filepath.Join(dir, name)}
		}
	}
	busAt := func(t *testing.T, dir string) map[string]string {
		p := filepath.Join(dir, "good")
		if _, err := Create(p, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeQuietly(p) })
		sem, shm, _, _ := readBusFile(p)
		return map[string]string{"P": p, "SEM": strconv.Itoa(int(sem)), "SHM": strconv.Itoa(int(shm))}
	}
	fifo := func(t *testing.T, dir string) map[string]string {
		p := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return map[string]string{"P": p}
	}
	loop := func(t *testing.T, dir string) map[string]string {
		os.Symlink("loop2", filepath.Join(dir, "loop1"))
		os.Symlink("loop1", filepath.Join(dir, "loop2"))
		return map[string]string{"P": filepath.Join(dir, "loop1")}
	}
	missingFolder := func(t *testing.T, dir string) map[string]string {
		return map[string]string{"P": filepath.Join(dir, "nodir", "bus"), "D": filepath.Join(dir, "nodir")}
	}
	danglingLink := func(t *testing.T, dir string) map[string]string {
		os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling"))
		return map[string]string{"P": filepath.Join(dir, "dangling"), "T": filepath.Join(dir, "gone")}
	}
	long := strings.Repeat("x", 2048)
	const usageWait = "usage: bus wait [-t DURATION] [-m REGEXP] [-r FD] [-0] PATH [COMMAND]"
	cases := []badInput{
		// Bus files, with the subcommands TestBadBusFiles does not try.
		{name: "wait on an empty file", setup: file("empty", "", 0o600), args: []string{"wait", "{P}"}, code: 1, want: "{P}: not a bus file (empty)"},
		{name: "info on one line", setup: file("one", "12\n", 0o600), args: []string{"info", "{P}"}, code: 1, want: "{P}: not a bus file (only one line)"},
		{name: "chmod on words", setup: file("words", "twelve\n13\n", 0o600), args: []string{"chmod", "600", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is not a decimal key)"},
		{name: "chown on a negative key", setup: file("neg", "12\n-13\n", 0o600), args: []string{"chown", "root", "{P}"}, code: 1, want: "{P}: not a bus file (line 2 is out of range (keys are 1 to 1073741823))"},
		{name: "create on a key too large", setup: file("big", "1073741824\n13\n", 0o600), args: []string{"create", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is out of range (keys are 1 to 1073741823))"},
		{name: "create on binary junk", setup: file("junk", "\x00\xff\x01\n\x7f\n", 0o600), args: []string{"create", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is not a decimal key)"},
		{name: "create -x on junk", setup: file("junkx", "\xff\xfe\n", 0o600), args: []string{"create", "-x", "{P}"}, code: 1, want: "{P}: already exists"},
		{name: "wait on CRLF lines", setup: file("crlf", "12\r\n13\r\n", 0o600), args: []string{"wait", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is not a decimal key)"},
		{name: "info on a long file", setup: file("long", strings.Repeat("1\n", 50), 0o600), args: []string{"info", "{P}"}, code: 1, want: "{P}: not a bus file (too long)"},
		{name: "create on a directory", setup: func(t *testing.T, dir string) map[string]string {
			os.Mkdir(filepath.Join(dir, "adir"), 0o755)
			return map[string]string{"P": filepath.Join(dir, "adir")}
		}, args: []string{"create", "{P}"}, code: 1, want: "{P}: is a directory, not a bus file"},
		{name: "create on a FIFO", setup: fifo, args: []string{"create", "{P}"}, code: 1, want: "{P}: not a bus file (not a regular file)"},
		{name: "wait on a FIFO", setup: fifo, args: []string{"wait", "{P}"}, code: 1, want: "{P}: not a bus file (not a regular file)"},
		{name: "listen on a device", setup: func(*testing.T, string) map[string]string { return map[string]string{"P": "/dev/null"} }, args: []string{"listen", "{P}"}, code: 1, want: "{P}: not a bus file (not a regular file)"},
		{name: "wait on a symlink loop", setup: loop, args: []string{"wait", "{P}"}, code: 1, want: "{P}: too many levels of symbolic links"},
		{name: "create on a symlink loop", setup: loop, args: []string{"create", "{P}"}, code: 1, want: "{P}: too many levels of symbolic links"},
		{name: "a file taken for a folder", setup: func(t *testing.T, dir string) map[string]string {
			os.WriteFile(filepath.Join(dir, "plain"), []byte("1\n2\n"), 0o600)
			return map[string]string{"P": filepath.Join(dir, "plain", "bus")}
		}, args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: no such bus file (a parent is not a directory)"},
		{name: "create under a file", setup: func(t *testing.T, dir string) map[string]string {
			os.WriteFile(filepath.Join(dir, "plain2"), []byte("x"), 0o600)
			return map[string]string{"P": filepath.Join(dir, "plain2", "bus")}
		}, args: []string{"create", "{P}"}, code: 1, want: "{P}: no such bus file (a parent is not a directory)"},
		{name: "create with the bus folder a file", setup: func(t *testing.T, dir string) map[string]string {
			p := filepath.Join(dir, "xdg")
			os.WriteFile(p, nil, 0o600)
			return map[string]string{"P": p}
		}, env: []string{"XDG_RUNTIME_DIR={P}"}, args: []string{"create"}, code: 1, want: "{P}/bus: making the bus folder: not a directory"},

		// Objects: gone, half gone, the wrong size, another user's.
		{name: "wait on objects that do not exist", setup: keys(0, 0, 0, 0, 0o600), args: []string{"wait", "{P}"}, code: 1, want: "{P}: stale bus: its semaphores (key {SEM}) are gone; `bus create {P}` makes it anew, `bus remove {P}` removes it"},
		{name: "info on an array of 2000 semaphores", setup: keys(2000, 2048, 0o600, 0o600, 0o600), args: []string{"info", "{P}"}, code: 1, want: "{P}: not a bus: the semaphore array of key {SEM} has 2000 semaphores, a bus has 5"},
		{name: "chown on objects that do not exist", setup: keys(0, 0, 0, 0, 0o600), args: []string{"chown", "root", "{P}"}, code: 1, want: "{P}: stale bus: its semaphores and shared memory are gone; `bus create {P}` makes it anew"},
		{name: "broadcast with the segment gone", setup: keys(5, 0, 0o600, 0, 0o600), args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: stale bus: its shared memory (key {SHM}) is gone; `bus create {P}` makes it anew, `bus remove {P}` removes it"},
		{name: "semaphores of the wrong size", setup: keys(3, 2048, 0o600, 0o600, 0o600), args: []string{"listen", "{P}"}, code: 1, want: "{P}: not a bus: the semaphore array of key {SEM} has 3 semaphores, a bus has 5"},
		{name: "not a bus to another user", setup: keys(8, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"remove", "{P}"}, code: 1, want: "{P}: not a bus: the semaphore array of key {SEM} has 8 semaphores, a bus has 5"},
		{name: "a stale bus whose segment is not a bus's", setup: keys(0, 4096, 0, 0o600, 0o600), args: []string{"create", "{P}"}, code: 1, want: "{P}: not a bus: the shared memory of key {SHM} is 4096 bytes, a bus's is 2048"},
		{name: "a stale bus whose semaphores are not a bus's", setup: keys(8, 0, 0o600, 0, 0o600), args: []string{"remove", "{P}"}, code: 1, want: "{P}: not a bus: the semaphore array of key {SEM} has 8 semaphores, a bus has 5"},
		{name: "another user's bus file", setup: file("private", "12\n13\n", 0o600), nobody: true, args: []string{"wait", "{P}"}, code: 1, want: "{P}: permission denied reading the bus file (it belongs to root (uid 0), mode rw-------)"},
		{name: "wait on another user's objects", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"wait", "{P}"}, code: 1, want: "{P}: permission denied: listening needs read and write permission on the bus's semaphores, owned by root (uid 0), mode rw-------"},
		{name: "another user's segment", setup: keys(5, 2048, 0o666, 0o600, 0o644), nobody: true, args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: permission denied: broadcasting needs read and write permission on the bus's shared memory, owned by root (uid 0), mode rw-------"},
		{name: "listen on a segment another user may only write", setup: keys(5, 2048, 0o666, 0o622, 0o644), nobody: true, args: []string{"listen", "{P}"}, code: 1, want: "{P}: permission denied: listening needs read permission on the bus's shared memory, owned by root (uid 0), mode rw--w--w-"},
		{name: "remove another user's objects", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"remove", "{P}"}, code: 1, want: "{P}: permission denied: only the bus's owner or root may change or remove its semaphores (owned by root (uid 0))"},
		{name: "chown another user's bus", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"chown", "65534", "{P}"}, code: 1, want: "{P}: permission denied: only root may give a bus to another user; its owner (root (uid 0)) may give it only to a group they are in"},
		{name: "create where one may not write", setup: path("nobodys"), nobody: true, args: []string{"create", "{P}"}, code: 1, want: "{P}: permission denied creating the bus file (its folder belongs to root (uid 0), mode rwxr-xr-x)"},

		// Messages.
		{name: "an empty message is legal", setup: busAt, args: []string{"broadcast", "{P}", ""}, code: 0},
		{name: "an empty line is legal", setup: busAt, stdin: "\n", args: []string{"broadcast", "{P}", "-"}, code: 0},
		{name: "a 2048-byte record", setup: busAt, stdin: long + "\x00", args: []string{"broadcast", "-0", "{P}", "-"}, code: 1, want: "{P}: stdin record 1: message too long (2048 bytes; at most 2047); not sent"},
		{name: "a NUL in a line", setup: busAt, stdin: "ok\na\x00b\n", args: []string{"broadcast", "{P}", "-"}, code: 1, want: "{P}: stdin line 2: message has a NUL byte at offset 1; not sent"},
		{name: "a surrogate half", setup: busAt, args: []string{"broadcast", "{P}", "\xed\xa0\x80"}, code: 1, want: "{P}: message is not valid UTF-8; nothing sent"},
		{name: "an overlong encoding", setup: busAt, stdin: "\xc0\xaf\n", args: []string{"broadcast", "{P}", "-"}, code: 1, want: "{P}: stdin line 1: message is not valid UTF-8; not sent"},
		{name: "4096 bytes", setup: busAt, args: []string{"broadcast", "{P}", long + long}, code: 1, want: "{P}: message too long (4096 bytes; at most 2047); nothing sent"},

		// Modes and owners.
		{name: "empty permissions", setup: busAt, args: []string{"chmod", "", "{P}"}, code: 2, want: "empty permissions"},
		{name: "not octal", setup: busAt, args: []string{"chmod", "8", "{P}"}, code: 2, want: `permissions "8": use octal (660) or u, g, o with =, + and - (ug, +o, u-g)`},
		{name: "octal too long", setup: busAt, args: []string{"chmod", "07777", "{P}"}, code: 2, want: `permissions "07777": octal mode too long`},
		{name: "= alone", setup: busAt, args: []string{"chmod", "=", "{P}"}, code: 2, want: `permissions "=": = must be followed by u, g, o or a`},
		{name: "an operator at the end", setup: busAt, args: []string{"chmod", "u+", "{P}"}, code: 2, want: `permissions "u+": + must be followed by u, g, o or a`},
		{name: "no group after the colon", setup: busAt, args: []string{"chown", "root:", "{P}"}, code: 2, want: `group "root:": no group name`},
		{name: "chgrp to nothing", setup: busAt, args: []string{"chgrp", "", "{P}"}, code: 2, want: `group "": no group name`},
		{name: "uid -1 spelt out", setup: busAt, args: []string{"chown", "4294967295", "{P}"}, code: 1, want: `{P}: no such user "4294967295" (not in /etc/passwd)`},
		{name: "uid beyond 32 bits", setup: busAt, args: []string{"chown", "4294967296", "{P}"}, code: 1, want: `{P}: no such user "4294967296" (not in /etc/passwd)`},
		{name: "an unknown group after a user", setup: busAt, args: []string{"chown", "0:no-such-group-x", "{P}"}, code: 1, want: `{P}: no such group "no-such-group-x" (not in /etc/group)`},

		// Durations, regexps, fds.
		{name: "a zero duration", setup: busAt, args: []string{"wait", "-t", "0", "{P}"}, code: 2, want: `-t "0": the duration must be more than 0`},
		{name: "a duration with a word for unit", setup: busAt, args: []string{"broadcast", "-t", "1sec", "{P}", "x"}, code: 2, want: `-t "1sec": not a duration (try 1.5, 500ms, 2s, 1m)`},
		{name: "a duration that overflows", setup: busAt, args: []string{"listen", "-t", "9999999999h", "{P}"}, code: 2, want: `-t "9999999999h": out of range (at most 2562047h47m16.854775807s)`},
		{name: "seconds that overflow", setup: busAt, args: []string{"wait", "-t99999999999", "{P}"}, code: 2, want: `-t "99999999999": out of range (at most 2562047h47m16.854775807s)`},
		{name: "a duration with a colon", setup: busAt, args: []string{"wait", "-t", "a: b", "{P}"}, code: 2, want: `-t "a: b": not a duration (try 1.5, 500ms, 2s, 1m)`},
		{name: "-t last", setup: busAt, args: []string{"wait", "-t"}, code: 2, want: "flag needs an argument: -t"},
		{name: "-t last in a group", setup: busAt, args: []string{"wait", "-0t"}, code: 2, want: "flag needs an argument: -t"},
		{name: "-t taking the rest of its group", setup: busAt, args: []string{"wait", "-t0", "{P}"}, code: 2, want: `-t "0": the duration must be more than 0`},
		{name: "a reversed range", setup: busAt, args: []string{"wait", "-m", "[z-a]", "{P}"}, code: 2, want: "-m \"[z-a]\": invalid character class range: `z-a`"},
		{name: "a repeat too large", setup: busAt, args: []string{"listen", "-m", "a{1001}", "{P}"}, code: 2, want: "-m \"a{1001}\": invalid repeat count: `{1001}`"},
		{name: "a bare star", setup: busAt, args: []string{"wait", "-m", "*", "{P}"}, code: 2, want: "-m \"*\": missing argument to repetition operator: `*`"},
		{name: "an unknown class", setup: busAt, args: []string{"wait", "-m", `\p{Foo}`, "{P}"}, code: 2, want: "-m \"\\\\p{Foo}\": invalid character class range: `\\p{Foo}`"},
		{name: "a regexp with a colon", setup: busAt, args: []string{"wait", "-m", "a: (b", "{P}"}, code: 2, want: "-m \"a: (b\": missing closing ): `a: (b`"},
		{name: "a negative fd", setup: busAt, args: []string{"wait", "-r", "-1", "{P}"}, code: 2, want: `-r "-1": not a file descriptor number`},
		{name: "an empty fd", setup: busAt, args: []string{"listen", "-r", "", "{P}"}, code: 2, want: `-r "": not a file descriptor number`},
		{name: "a ten-digit fd", setup: busAt, args: []string{"wait", "-r", "1234567890", "{P}"}, code: 2, want: `-r "1234567890": not a file descriptor number`},
		{name: "a read-only fd", setup: busAt, args: []string{"wait", "-r", "0", "{P}"}, code: 2, want: `-r "0": open for reading only (the ready signal is written to it)`},
		{name: "-r on the stdout that wait prints on", setup: busAt, args: []string{"wait", "-t", "5s", "-r", "1", "{P}"}, code: 2, want: `-r "1": standard output carries the messages or the command's output (to signal on it: -r 3 3>&1)`},
		{name: "-r on the stdout that the command inherits", setup: busAt, args: []string{"listen", "-r1", "{P}", "true"}, code: 2, want: `-r "1": standard output carries the messages or the command's output (to signal on it: -r 3 3>&1)`},
		{name: "-r on stderr", setup: busAt, args: []string{"wait", "-t", "5s", "-r", "2", "{P}", "true"}, code: 2, want: `-r "2": standard error carries bus's errors and timeouts (to signal on it: -r 3 3>&2)`},

		// Paths that name no bus, and what create says of them.
		{name: "create in a missing folder", setup: missingFolder, args: []string{"create", "{P}"}, code: 1, want: "{P}: its folder {D} does not exist"},
		{name: "create where the folder refuses files", args: []string{"create", "/proc/bus-test"}, code: 1, want: "/proc/bus-test: creating the bus file: no such file or directory"},
		{name: "create through a dangling link", setup: danglingLink, args: []string{"create", "{P}"}, code: 1, want: "{P}: a symbolic link to {T}, which does not exist"},
		{name: "broadcast through a dangling link", setup: danglingLink, args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: a symbolic link to {T}, which does not exist"},
		{name: "create with an empty path", args: []string{"create", ""}, code: 1, want: "empty path: give the bus's path, or none for a random one"},

		// Operands and flags.
		{name: "create with two paths", args: []string{"create", "a", "b"}, code: 2, want: `extra operand "b"`},
		{name: "chmod without a path", args: []string{"chmod", "600"}, code: 2, want: "missing operand"},
		{name: "chown without a path", args: []string{"chown", "root"}, code: 2, want: "missing operand"},
		{name: "info without a path", args: []string{"info"}, code: 2, want: "missing operand"},
		{name: "remove without a path", args: []string{"remove"}, code: 2, want: "missing operand"},
		{name: "wait without a path", args: []string{"wait"}, code: 2, want: "missing operand"},
		{name: "an unknown flag of listen", setup: busAt, args: []string{"listen", "-x", "{P}"}, code: 2, want: "flag not known: -x"},
		{name: "-t where there is none", setup: busAt, args: []string{"info", "-t", "1s", "{P}"}, code: 2, want: "flag not known: -t"},
		{name: "-n on remove", setup: busAt, args: []string{"remove", "-n", "{P}"}, code: 2, want: "flag not known: -n"},
		{name: "a long unknown flag", setup: busAt, args: []string{"broadcast", "--bogus", "{P}", "x"}, code: 2, want: "flag not known: -bogus"},
		{name: "a flag alone", args: []string{"--bogus"}, code: 2, want: "no subcommand"},
		{name: "an unknown flag in a group", setup: busAt, args: []string{"broadcast", "-nq", "{P}", "x"}, code: 2, want: "flag not known: -q (in -nq)"},
		{name: "a flag after PATH", setup: busAt, args: []string{"listen", "{P}", "-t", "1s"}, code: 2, want: `flag -t after PATH: flags go before PATH (-- before "-t" makes it an operand)`},
		{name: "a flag after COMMAND", setup: busAt, args: []string{"wait", "{P}", "true", "-0"}, code: 2, want: `flag -0 after PATH: flags go before PATH (-- before "-0" makes it an operand)`},
		{name: "a flag for MESSAGE", setup: busAt, args: []string{"broadcast", "{P}", "-n"}, code: 2, want: `flag -n after PATH: flags go before PATH (-- before "-n" makes it an operand)`},
		{name: "broadcast without MESSAGE", setup: busAt, stdin: "0 from stdin\n", args: []string{"broadcast", "{P}"}, code: 2, want: "missing MESSAGE (- sends the lines of stdin)"},
		{name: "broadcast with an empty unquoted $msg", setup: busAt, args: []string{"broadcast", "-t", "1s", "{P}"}, code: 2, want: "missing MESSAGE (- sends the lines of stdin)"},
	}
	// One definition of a bus (issue 15): objects of the wrong size are
	// refused by every subcommand, in the same words, and left as they are.
	for _, odd := range []struct {
		nsems, size int
		want        string
	}{
		{8, 2048, "the semaphore array of key {SEM} has 8 semaphores, a bus has 5"},
		{5, 4096, "the shared memory of key {SHM} is 4096 bytes, a bus's is 2048"},
		{5, 1024, "the shared memory of key {SHM} is 1024 bytes, a bus's is 2048"},
	} {
		for i, args := range [][]string{{"listen", "{P}"}, {"wait", "{P}"}, {"broadcast", "{P}", "x"}, {"info", "{P}"},
			{"remove", "{P}"}, {"chmod", "600", "{P}"}, {"chown", "root", "{P}"}, {"chgrp", "0", "{P}"}, {"create", "{P}"}} {
			cases = append(cases, badInput{name: fmt.Sprintf("%s on %d semaphores and %d bytes", args[0], odd.nsems, odd.size),
				setup: keys(odd.nsems, odd.size, 0o600, 0o600, 0o600), args: args, code: 1, want: "{P}: not a bus: " + odd.want, again: i > 0})
		}
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	if emulated() {
		// Usage errors are the command line's parsing, and a check made
		// again through another subcommand is the same code: the same Go
		// on every architecture (the host's run has them); under emulation
		// each is a process start of 130 ms or more, for nothing new.
		all := len(cases)
		cases = slices.DeleteFunc(cases, func(c badInput) bool { return c.code == 2 || c.again })
		t.Logf("emulated: %d of %d cases, without the usage errors and the checks made again", len(cases), all)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := xdgDir(t)
			words := map[string]string{}
			if c.setup != nil {
				words = c.setup(t, dir)
			}
			fill := func(s string) string {
				for k, v := range words {
					s = strings.ReplaceAll(s, "{"+k+"}", v)
				}
				return s
			}
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = fill(a)
			}
			objs, _ := sysvObjects()
			tree := treeState(dir)
			entries := func() (out []procEntry) { // modes and owners too
				for _, k := range []string{"SEM", "SHM"} {
					if key, err := strconv.Atoi(words[k]); err == nil {
						e, _ := procObject(k == "SEM", int32(key))
						e.lpid, e.nattch = 0, 0 // a broadcast that may attach
						out = append(out, e)
					}
				}
				return out
			}
			before := entries()
			cmd := busCommand(args...)
			cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+dir)
			for _, e := range c.env {
				cmd.Env = append(cmd.Env, fill(e))
			}
			if c.nobody {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			r := runCmd(t, cmd, c.stdin)
			if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
				t.Fatalf("bus %q panicked: %s", args, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			want := fill(c.want)
			switch {
			case r.code != c.code:
				t.Errorf("bus %q: exit status %d, want %d; stderr %q", args, r.code, c.code, r.stderr)
			case want == "" && r.stderr != "":
				t.Errorf("bus %q: stderr %q, want none", args, r.stderr)
			case want != "" && lines[0] != "bus: "+want:
				t.Errorf("bus %q: stderr\n%q, want\n%q", args, lines[0], "bus: "+want)
			case c.code == 2 && (len(lines) != 2 || !strings.HasPrefix(lines[1], "usage: bus ")):
				t.Errorf("bus %q: usage error is not one line and the synopsis: %q", args, r.stderr)
			case c.code == 1 && len(lines) != 1:
				t.Errorf("bus %q: stderr is not one line: %q", args, r.stderr)
			}
			if now, _ := sysvObjects(); len(madeBy(cmd.Process.Pid, objs, now)) != 0 {
				t.Errorf("bus %q made IPC objects: %v", args, madeBy(cmd.Process.Pid, objs, now))
			}
			if now := entries(); !slices.Equal(before, now) {
				t.Errorf("bus %q changed the objects:\nbefore %+v\nafter  %+v", args, before, now)
			}
			if now := treeState(dir); !slices.Equal(tree, now) {
				t.Errorf("bus %q changed the files:\nbefore %q\nafter  %q", args, tree, now)
			}
		})
	}
}

// TestSegmentWithoutNUL: a listener never trusts the segment. A peer that
// fills all 2048 bytes with no NUL gets exactly those 2048 bytes delivered.
func TestSegmentWithoutNUL(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The writer's steps by hand, with a segment a careless peer wrote.
	deadline := time.Now().Add(patience)
	if err := b.semop(opTake, deadline); err != nil {
		t.Fatal(err)
	}
	if err := b.semop(opPublish, deadline); err != nil {
		t.Fatal(err)
	}
	for i := range b.mem {
		b.mem[i] = 'x'
	}
	if err := b.setQ0(); err != nil {
		t.Fatal(err)
	}
	if err := b.semop(opFinish, deadline); err != nil {
		t.Fatal(err)
	}
	if got := l.next(); got != strings.Repeat("x", 2048) {
		t.Fatalf("got %d bytes, want 2048", len(got))
	}
	bus(t, "", "broadcast", path, "0 after").expect(t, 0, "")
	if got := l.next(); got != "0 after" {
		t.Fatalf("got %q", got)
	}
}
