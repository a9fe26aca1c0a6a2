// Command bus broadcasts short messages between processes on one Linux
// machine, through System V semaphores and shared memory, with no daemon.
// It speaks the format of maandree's bus and libbus, with a broadcast
// protocol that does not deadlock (see proto.go).
//
//	bus create [-x] [PATH]
//	bus remove PATH
//	bus broadcast [-n] [-t DURATION] [-0] PATH MESSAGE|-
//	bus listen [-t DURATION] [-m REGEXP] [-r FD] [-0] PATH [COMMAND]
//	bus wait [-t DURATION] [-m REGEXP] [-r FD] [-0] PATH [COMMAND]
//	bus chmod PERMISSIONS PATH
//	bus chown OWNER[:GROUP] PATH
//	bus chgrp GROUP PATH
//	bus info PATH
//	bus help [SUBCOMMAND]
//	bus version
//
// Exit status: 0 done, 1 failed, 2 usage, 124 timed out; wait with COMMAND
// exits with the command's status.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"
)

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	os.Exit(exitStatus(err, os.Stderr))
}

// exitError carries a status with no message: wait's command's status.
type exitError int

func (e exitError) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// exitStatus reports err on stderr and maps it to the exit status.
func exitStatus(err error, stderr io.Writer) int {
	status, isStatus := as[exitError](err)
	usage, isUsage := as[*usageError](err)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case isStatus:
		return int(status)
	case isUsage:
		fprintf(stderr, "bus: %s\n%s\n", usage.msg, synopsis(usage.name))
		return 2
	}
	fprintf(stderr, "bus: %v\n", err)
	if errors.Is(err, errTimeout) {
		return 124
	}
	return 1
}

// run runs the command line args.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stdout)
	if err != nil {
		return err
	}
	var deadline time.Time
	if o.timeout > 0 {
		deadline = time.Now().Add(o.timeout)
	}
	switch o.name {
	case "help":
		name := ""
		if len(o.args) == 1 {
			name = o.args[0]
			if _, ok := subcommands[name]; !ok {
				return &usageError{msg: sprintf("unknown subcommand %q", name), name: "help"}
			}
		}
		io.WriteString(stdout, helpText(name))
		return nil
	case "create":
		path := ""
		if len(o.args) == 1 {
			if path = o.args[0]; path == "" { // "$UNSET": not a random bus
				return errorf("empty path: give the bus's path, or none for a random one")
			}
		}
		p, err := Create(path, o.excl)
		if err == nil && path == "" {
			io.WriteString(stdout, p+"\n")
		}
		return err
	case "remove":
		note, err := Remove(o.args[0])
		if note != "" {
			fprintf(stderr, "bus: %s\n", note)
		}
		return err
	case "broadcast":
		return broadcast(o, stdin, stderr)
	case "listen", "wait":
		return listen(o, deadline, stdin, stdout, stderr)
	case "chmod":
		mode, err := parseMode(o.args[0])
		if err != nil {
			return &usageError{msg: err.Error(), name: "chmod"}
		}
		return Chmod(o.args[1], mode)
	case "chown", "chgrp":
		uid, gid, err := parseOwner(o.args[0], o.name == "chgrp")
		if err != nil {
			if _, ok := as[*usageError](err); ok {
				return err
			}
			return errorf("%s: %w", o.args[1], err)
		}
		return Chown(o.args[1], uid, gid)
	case "info":
		return info(o.args[0], stdout, stderr)
	case "version":
		io.WriteString(stdout, "bus "+version(buildInfo())+"\n")
		return nil
	}
	return &usageError{msg: "unknown subcommand " + o.name}
}

// version is bus's version, from the build information that the go
// command writes into the binary: the main module's version (a tag, or
// since Go 1.24 a pseudo-version of the commit), else the commit (its
// first 12 digits, "+dirty" if changed, and its time), else "devel".
func version(info string) string {
	var v, rev, at, dirty string
	for _, line := range strings.Split(info, "\n") {
		f := strings.Split(line, "\t") // mod PATH VERSION SUM, build KEY=VALUE
		switch {
		case f[0] == "mod" && len(f) > 2:
			v = f[2]
		case f[0] == "build" && len(f) > 1:
			key, value, _ := strings.Cut(f[1], "=")
			switch key {
			case "vcs.revision":
				rev = value
			case "vcs.time":
				at = " (" + value + ")"
			case "vcs.modified":
				if value == "true" {
					dirty = "+dirty"
				}
			}
		}
	}
	switch {
	case v != "" && v != "(devel)":
		return v
	case rev == "":
		return "devel"
	case len(rev) > 12: // as in Go's pseudo-versions
		rev = rev[:12]
	}
	return rev + dirty + at
}

// buildInfo is the build information as runtime/debug.ReadBuildInfo reads
// it (which would bring fmt, 188 KB): lines between two 16-byte sentinels,
// here read from the executable. The sentinels are kept inverted, so that
// this copy of them is not what is found.
func buildInfo() string {
	exe, err := readFile("/proc/self/exe")
	var start, end [16]byte
	for i := range 16 {
		start[i] = ^"\xcf\x88\x50\xf3\x6d\x8b\xf7\xfd\xbe\x1e\x3e\xf8\x19\x29\xe7\x19"[i]
		end[i] = ^"\x06\xcd\xbc\xce\x79\xe7\xdf\x8d\xff\x7d\xbd\xef\xbe\xe9\x27\x0d"[i]
	}
	_, info, _ := bytes.Cut(exe, start[:])
	info, _, ok := bytes.Cut(info, end[:])
	if err != nil || !ok {
		return ""
	}
	return string(info)
}

// broadcast sends the message operand, or each record of stdin. In a
// stream, a record that times out is reported and the stream goes on (a
// bridge must not stop for one stuck listener); the status is then 124.
func broadcast(o *options, stdin io.Reader, stderr io.Writer) error {
	path := o.args[0]
	if len(o.args) == 2 && o.args[1] != "-" {
		msg := []byte(o.args[1])
		if err := checkMessage(msg); err != nil {
			return errorf("%s: %w; nothing sent", path, err)
		}
		b, err := Open(path, false)
		if err != nil {
			return err
		}
		defer b.Close()
		b.raw = true
		return send(b, msg, o)
	}
	b, err := Open(path, false)
	if err != nil {
		return err
	}
	defer b.Close()
	b.raw = true
	sep := byte('\n')
	what := "line"
	if o.nul {
		sep, what = 0, "record"
	}
	// A record that cannot be sent (too long, not UTF-8) or that timed out
	// is reported and the stream goes on: a bridge must not stop for one
	// bad line or one stuck listener. The status says the worst: 1, or 124.
	r := bufio.NewReaderSize(stdin, shmSize+1)
	var status error
	for n := 1; ; n++ {
		rec, err := r.ReadSlice(sep)
		if err == io.EOF && len(rec) == 0 {
			return status
		}
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull { // the rest of it
				_, err = r.ReadSlice(sep)
			}
			fprintf(stderr, "bus: %s: stdin %s %d: message too long (at most %d bytes); not sent\n", path, what, n, maxMessage)
			status = exitError(1)
			if err == io.EOF {
				return status
			}
			continue
		}
		if err != nil && err != io.EOF {
			return errorf("%s: reading stdin: %w", path, err)
		}
		rec = bytes.TrimSuffix(rec, []byte{sep})
		if sep == '\n' {
			rec = bytes.TrimSuffix(rec, []byte{'\r'}) // a CRLF line, as bufio.ScanLines reads it
		}
		if cerr := checkMessage(rec); cerr != nil {
			fprintf(stderr, "bus: %s: stdin %s %d: %v; not sent\n", path, what, n, cerr)
			status = exitError(1)
		} else if serr := send(b, rec, o); errors.Is(serr, errTimeout) {
			fprintf(stderr, "bus: stdin %s %d: %v\n", what, n, serr)
			if status == nil {
				status = exitError(124)
			}
		} else if serr != nil {
			return serr
		}
		if err == io.EOF {
			return status
		}
	}
}

// send broadcasts one message, with -n and -t (the deadline is per message).
func send(b *Bus, msg []byte, o *options) error {
	var deadline time.Time
	if o.timeout > 0 {
		deadline = time.Now().Add(o.timeout)
	}
	missed, err := b.Broadcast(msg, deadline, o.nowait)
	switch {
	case err == errBusy:
		return failf(b.Path, err, "busy: another process is broadcasting (-n); nothing sent")
	case err == errTimeout && missed < 0:
		return failf(b.Path, err, "timed out after %v waiting for the bus (a broadcast or a listener holds it up; `bus info %s` shows who); nothing sent", o.timeout, b.Path)
	case err == errTimeout:
		return failf(b.Path, err, "timed out after %v: %d listener(s) had not taken the message", o.timeout, missed)
	}
	return err
}

// listen receives messages for listen and wait.
func listen(o *options, deadline time.Time, stdin io.Reader, stdout, stderr io.Writer) error {
	once := o.name == "wait"
	b, err := Open(o.args[0], true)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Join(deadline); err != nil {
		return timeoutWords(b, err, o, 0)
	}
	if o.readyFD >= 0 {
		// Registered: no broadcast from now on can be missed.
		f := os.NewFile(uintptr(o.readyFD), "ready")
		_, err := f.Write([]byte{'\n'})
		f.Close()
		if err != nil {
			// Out again as a timed-out Next leaves: S only (W is not ours);
			// the arm of Q is undone at exit.
			b.CountOut()
			return errorf("-r %d: writing the ready signal: %w", o.readyFD, unwrapPathError(err))
		}
	}
	var run *runner
	if len(o.args) == 2 {
		run = newRunner(o.args[1], stdin, stdout, stderr)
	} else {
		// Nothing else runs in this process: its waits are raw (see
		// Bus.raw), and with one P a Gosched wakes no thread to look for work.
		b.raw = true
		runtime.GOMAXPROCS(1)
	}
	sep := byte('\n')
	if o.nul {
		sep = 0
	}
	var buf [shmSize + 1]byte // the message and its separator
	emit := func(n int) error {
		buf[n] = sep
		if _, err := stdout.Write(buf[:n+1]); err != nil {
			return errorf("%s: writing to standard output: %w", b.Path, unwrapPathError(err))
		}
		return nil
	}
	outFD, outTTY := pollable(stdout)
	for got := 0; ; {
		n, err := b.Next((*[shmSize]byte)(buf[:shmSize]), deadline)
		if err != nil {
			return timeoutWords(b, err, o, got)
		}
		matched := o.match == nil || o.match.Match(buf[:n]) != o.invert
		if matched {
			got++
		}
		if once && matched {
			leaveErr := b.Leave()
			if run != nil {
				b.Close() // off the bus while the command runs: info must not list it
				return run.wait(buf[:n])
			}
			if err := emit(n); err != nil {
				return err
			}
			return leaveErr
		}
		// A command starts before counting out, as the C tool's callback
		// does: once a broadcast returns, its commands have started, and a
		// listener killed after that has dropped none of them. tidy: a 16th
		// start, memory to give back after the re-arm.
		tidy := matched && run != nil && run.start(buf[:n])
		if err := b.CountOut(); err != nil {
			return err
		}
		// Printed once counted out, not after the round: a round that a
		// stopped listener holds open does not hold up this one's output.
		// But not while holding W if the write would block (a reader that
		// stopped reading) or could stop this process (a terminal): that
		// would stop every writer at publishing.
		// Re-armed first, this listener is one that has not taken the next
		// message: writers deliver to the others, and -t gives up on it.
		late := matched && run == nil && outFD >= 0 && (outTTY || !writable(outFD))
		if matched && run == nil && !late {
			if err := emit(n); err != nil {
				return err
			}
		}
		err = b.Rearm(deadline)
		if tidy {
			debug.FreeOSMemory() // see runner.start: out of the round
		}
		if late {
			if err := emit(n); err != nil {
				return err
			}
		}
		if err != nil {
			return timeoutWords(b, err, o, got)
		}
	}
}

// pollable returns w's fd if a write to it can block on its reader (a
// pipe, a socket, a terminal), else -1 (a file, /dev/null, a buffer); and
// whether it is a device, which a write may stop the process on whatever
// poll says (a terminal with tostop stops a background writer with
// SIGTTOU): a device is always written to after re-arming.
func pollable(w io.Writer) (fd int, device bool) {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return -1, false
	}
	fd = int(f.Fd())
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil {
		return -1, false
	}
	device = st.Mode&syscall.S_IFMT == syscall.S_IFCHR
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG || device && st.Rdev == 1<<8|3 { // /dev/null
		return -1, false
	}
	return fd, device
}

// writable reports whether a message written to fd now would not block:
// poll with no wait (a full pipe, a stopped terminal: not writable; a
// reader gone: the write fails at once, so writable; in doubt, not).
func writable(fd int) bool {
	const pollOut = 0x4
	p := struct {
		fd              int32
		events, revents int16
	}{int32(fd), pollOut, 0}
	var ts syscall.Timespec
	n, _, e := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return e == 0 && n == 1 // EINTR (a signal pending): write after re-arming
}

func timeoutWords(b *Bus, err error, o *options, got int) error {
	if err != errTimeout {
		return err
	}
	switch {
	case o.name == "listen":
		return failf(b.Path, err, "timed out after %v (-t), having received %d message(s)", o.timeout, got)
	case o.match != nil:
		return failf(b.Path, err, "timed out after %v: no matching message", o.timeout)
	}
	return failf(b.Path, err, "timed out after %v: no message", o.timeout)
}

// runner runs sh -c COMMAND with $msg for each message. The listener
// starts each command itself before it counts out, as the C tool does: not
// from a queue, whose messages a listener killed (a service stopping) would
// take with it, taken but never acted on. A goroutine reaps every child with
// wait4(-1): one thread blocked however many commands run at once, where a
// Wait per child would hold a thread each. syscall.ForkExec, not os/exec,
// which would add half a megabyte to the binary, nor os.StartProcess
// (pidfds, 20 KB).
type runner struct {
	command        string
	stdin          io.Reader
	stdout, stderr io.Writer
	wake           chan struct{} // a child started: the reaper has one to wait for

	sh      string
	argv    []string
	attr    *syscall.ProcAttr
	files   [3]*os.File // attr's stdin, stdout and stderr, kept from the collector
	spawned int
}

func newRunner(command string, stdin io.Reader, stdout, stderr io.Writer) *runner {
	// Each start leaves a few kilobytes of garbage (argv, environment), and
	// the collector would let 4 MB of it pile up before its first cycle: a
	// listener must stay small on a router, however many commands it runs.
	debug.SetGCPercent(10)
	return &runner{command: command, stdin: stdin, stdout: stdout, stderr: stderr}
}

// spawn starts sh -c COMMAND with $msg set to msg. Found once, the shell's
// path, argv and environment are reused: garbage per start is what keeps a
// listener's heap, so its resident memory, growing with the commands run.
func (r *runner) spawn(msg string) (pid int, err error) {
	if r.attr == nil {
		sh, err := lookPath("sh")
		if err != nil {
			return 0, err
		}
		// The listener's stdin too, as the C tool's fork leaves it: a
		// command may read it. (Started with fd 0 closed, the runtime has
		// opened /dev/null there.) Run in-process with a reader: /dev/null.
		stdin, ok := r.stdin.(*os.File)
		if !ok || stdin == nil {
			if stdin, err = os.Open(os.DevNull); err != nil {
				return 0, err
			}
		}
		r.files = [3]*os.File{stdin, fileFor(r.stdout), fileFor(r.stderr)}
		r.sh, r.argv = sh, []string{"sh", "-c", "--", r.command}
		r.attr = &syscall.ProcAttr{Env: append(os.Environ(), ""),
			Files: []uintptr{r.files[0].Fd(), r.files[1].Fd(), r.files[2].Fd()}}
	}
	r.attr.Env[len(r.attr.Env)-1] = "msg=" + msg
	pid, err = syscall.ForkExec(r.sh, r.argv, r.attr)
	if err != nil {
		return 0, &os.PathError{Op: "fork/exec", Path: r.sh, Err: err}
	}
	return pid, nil
}

// fileFor gives children w as a file: w itself, or a pipe copied into it
// (when run is called in-process with a buffer).
func fileFor(w io.Writer) *os.File {
	if f, ok := w.(*os.File); ok {
		return f
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil
	}
	go func() {
		// A loop, not io.Copy: its splice and sendfile paths are 8 KB.
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				break
			}
		}
		pr.Close()
	}()
	return pw
}

// lookPath finds name in $PATH, as execlp does.
func lookPath(name string) (string, error) {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/bin:/usr/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		// syscall.Stat, not os.Stat: its FileInfo would keep time.Time's
		// formatting and zone loading in the binary.
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Mode&0o111 != 0 {
			return p, nil
		}
	}
	return "", errorf("%s not found in $PATH", name)
}

// start starts the command for msg. It reports a 16th start: time to give
// freed heap pages back, out of the round (after the re-arm). They stay
// resident until the scavenger's slow return, and giving them back every 16
// starts (a forced collection of a small heap, 2 ms) keeps a command-running
// listener at 3.3 MB resident after 2,000 commands: 0.1 MB more every 64,
// 6 MB with the collector left alone.
func (r *runner) start(msg []byte) (tidy bool) {
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
		go r.reap()
	}
	if _, err := r.spawn(string(msg)); err != nil {
		fprintf(r.stderr, "bus: running the command: %v\n", err)
		return false
	}
	select {
	case r.wake <- struct{}{}:
	default: // the reaper is awake already
	}
	r.spawned++
	return r.spawned%16 == 0
}

// reap reaps children until none is left, then waits for the next start.
// No count to keep: wait4(-1) blocks while any child runs and says ECHILD
// when none does; a wake for a child already reaped costs one ECHILD.
func (r *runner) reap() {
	for range r.wake {
		for {
			if _, err := syscall.Wait4(-1, nil, 0, nil); err != nil && err != syscall.EINTR {
				break // ECHILD: none left
			}
		}
	}
}

// wait runs the command for msg and returns its exit status (128 + the
// signal's number if a signal ended it, as shells report it).
func (r *runner) wait(msg []byte) error {
	pid, err := r.spawn(string(msg))
	if err != nil {
		return errorf("running the command: %w", err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		return errorf("waiting for the command: %w", err)
	case ws.Signaled():
		return exitError(128 + int(ws.Signal()))
	case ws.ExitStatus() != 0:
		return exitError(ws.ExitStatus())
	}
	return nil
}

// info prints what a bus is made of and who uses it, and checks that it
// can work: each problem found is a line on stderr, and the status is 1.
func info(path string, stdout, stderr io.Writer) error {
	f, err := openBusFile(path)
	if err != nil {
		return err
	}
	defer f.close()
	sem, shm, st := f.sem, f.shm, &f.st
	var rows table
	if f.link != nil {
		rows = append(rows, []string{"link", path, "owner " + userName(f.link.Uid), "to " + followLinks(path)})
	}
	rows = append(rows, []string{"bus file", path, "owner " + userName(st.Uid), "group " + groupName(st.Gid), "mode " + modeString(st.Mode&0o777)})
	for _, o := range []struct {
		name string
		sem  bool
		key  int32
	}{{"semaphores", true, sem}, {"shared memory", false, shm}} {
		e, ok := procObject(o.sem, o.key)
		if !ok {
			rows = append(rows, []string{o.name, sprintf("key %d", o.key), "GONE"})
			continue
		}
		rows = append(rows, []string{o.name, sprintf("key %d, id %d", o.key, e.id),
			"owner " + userName(e.uid), "group " + groupName(e.gid), "mode " + modeString(e.perms&0o777)})
	}
	rows.print(stdout)
	o := objects{semKey: sem, shmKey: shm}
	if err := o.find(path); err != nil {
		return err
	}
	if err := f.trust(path, o); err != nil {
		return err
	}
	if o.stale() {
		return failf(path, errStale, "stale bus: %s; `bus create %s` makes it anew, `bus remove %s` removes it", goneWords(o.semid < 0, o.shmid < 0), path, path)
	}
	// A problem is reported only if it persists for 200 ms: a process
	// dying is detached from the segment before the kernel undoes its
	// adjustments of the semaphores (do_exit: exit_mm, then exit_sem), so
	// that for a moment they count a process no longer attached; one
	// leaving does so between its last semop and its exit. That takes
	// microseconds, or a few scheduler ticks on a loaded machine; a bus
	// that is broken stays so. Most readings, not all: a writer waiting
	// for a dead X re-queues between raw slices, and a reading that falls
	// there counts it as a writer that could hold X. A healthy bus is read
	// once.
	var s busState
	var seen [nsems]int    // readings that showed the problem, from the first on
	var said [nsems]string // what the last of them said
	for try := 0; try < 11; try++ {
		if e := s.read(o.semid, shm); e != 0 {
			return (&Bus{Path: path}).objectError("semaphores", sem, "info", "read", e)
		}
		some := false
		for i, p := range s.problems(path) {
			if p != "" && (try == 0 || seen[i] > 0) {
				seen[i]++
				said[i] = p
			}
			some = some || seen[i] > 0
		}
		if !some {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	vals := s.vals
	// S counts the registered listeners that have not taken the message
	// of the round in progress: between rounds, all of them.
	switch {
	case vals[semX] != 0:
		fprintf(stdout, "\nlisteners: %d registered, %d copying a message\n", vals[semS], vals[semW])
		fprintf(stdout, "broadcast: none in progress\n")
	case vals[semN] > 0:
		fprintf(stdout, "\nlisteners: %d yet to take the message, %d holding it (copying, or waiting for the round to end)\n", vals[semS], vals[semW])
		fprintf(stdout, "broadcast: in progress, published, waiting for %d listener(s) to take it\n", vals[semS])
	default:
		fprintf(stdout, "\nlisteners: %d registered, %d copying a message\n", vals[semS], vals[semW])
		fprintf(stdout, "broadcast: in progress, waiting for listeners to finish copying\n")
	}
	sems := table{{"semaphore", "value", "waiting to take", "waiting for 0", "last pid"}}
	for i, name := range semNames {
		sems = append(sems, []string{name, strconv.Itoa(vals[i]), strconv.Itoa(s.ncnt[i]), strconv.Itoa(s.zcnt[i]), strconv.Itoa(s.pids[i])})
	}
	io.WriteString(stdout, "\n")
	sems.print(stdout)
	fprintf(stdout, "\n%d process(es) attached\n", len(s.procs))
	if len(s.procs) > 0 {
		t := table{{"pid", "state", "command"}}
		for _, p := range s.procs {
			t = append(t, []string{strconv.Itoa(p.pid), p.state, p.cmd})
		}
		t.print(stdout)
	}
	var status error
	for i, p := range said {
		if seen[i] >= 8 { // of 11
			fprintf(stderr, "bus: %s: %s\n", path, p)
			status = exitError(1)
		}
	}
	return status
}

var semNames = [nsems]string{"S listeners", "W copying", "X writers' lock", "Q gate", "N publishing"}

// busState is one reading of a bus's semaphores and of who is attached.
type busState struct {
	vals, ncnt, zcnt, pids [nsems]int
	procs                  []proc
	// Attached processes that could listen (a read-only mapping, as
	// listeners of this tool and of the C one attach the segment) and that
	// could broadcast (read-write); those whose maps the reader may not
	// see (another user's, unless root) count as either.
	listeners, writers int
}

func (s *busState) read(semid int, shm int32) syscall.Errno {
	var all ipcBuf // the values in one call: one moment, not five
	if e := semctlBuf(semid, semGetall, &all); e != 0 {
		return e
	}
	for i := range nsems {
		s.vals[i] = all.ushort(i)
		s.ncnt[i], _ = semctl(semid, i, semGetn, 0)
		s.zcnt[i], _ = semctl(semid, i, semGetz, 0)
		s.pids[i], _ = semctl(semid, i, semGetpid, 0)
	}
	s.procs = attached(shm)
	unseen := 0
	if p, ok := procObject(false, shm); ok {
		unseen = max(0, int(p.nattch)-len(s.procs))
	}
	s.listeners, s.writers = unseen, unseen
	for _, p := range s.procs {
		if p.writes {
			s.writers++
		} else {
			s.listeners++
		}
	}
	return 0
}

// problems says, for each semaphore, what keeps the bus from working, or
// "": a value that the processes attached cannot account for (a peer that
// died without SEM_UNDO, or a hand's semctl), or a maximum reached.
func (s *busState) problems(path string) (out [nsems]string) {
	v := s.vals
	// Who could hold X: the writers attached, but those waiting to take it
	// (ncnt of X counts them, and listeners waiting to join).
	hold := s.writers - max(0, s.ncnt[semX]-s.listeners)
	for i, name := range semNames {
		what := ""
		switch {
		case v[i] >= 32767:
			what = "its maximum (SEMVMX): the next process to raise it fails"
		case (i == semS || i == semW) && v[i] > s.listeners:
			what = sprintf("more than the %d process(es) attached that could listen: a listener left without undoing it, and every broadcast waits for it (or, with -t, times out)", s.listeners)
		case i == semX && v[i] == 0 && hold <= 0:
			what = "and no process attached could hold it: a broadcast left without giving it back, and every broadcast waits for it (or, with -t, times out)"
		case i == semX && v[i] > 1:
			what = "more than 1: two broadcasts can publish at once"
		case i == semN && v[i] > 1:
			what = "more than 1: listeners hang after their next message"
		case i == semN && v[i] == 1 && (v[semX] > 0 || hold <= 0):
			what = "and no broadcast is publishing: one left without ending its round, and listeners hang after their next message"
		}
		if what != "" {
			out[i] = sprintf("semaphore %s (%s) is %d, %s; `bus remove %s` and `bus create %s` make the bus anew", name[:1], name[2:], v[i], what, path, path)
		}
	}
	return out
}

// table prints rows with each column as wide as its widest cell.
type table [][]string

func (t table) print(w io.Writer) {
	var widths []int
	for _, row := range t {
		for i, c := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range t {
		for i, c := range row {
			b.WriteString(c)
			if i < len(row)-1 {
				for n := utf8.RuneCountInString(c); n < widths[i]+2; n++ {
					b.WriteByte(' ')
				}
			}
		}
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

type proc struct {
	pid    int
	state  string
	cmd    string
	writes bool // the segment is mapped read-write
}

// attached lists the processes that have the segment of key mapped, from
// /proc/PID/maps, where it shows as /SYSV followed by the key in hex, after
// the mapping's permissions: "7f..-7f.. rw-s 00000000 00:01 5  /SYSV...".
func attached(key int32) []proc {
	name := sprintf(" /SYSV%08x", uint32(key))
	var out []proc
	for _, pid := range pids() {
		dir := "/proc/" + strconv.Itoa(pid)
		maps, err := readFile(dir + "/maps")
		at := bytes.Index(maps, []byte(name))
		if err != nil || at < 0 {
			continue
		}
		line := maps[bytes.LastIndexByte(maps[:at], '\n')+1 : at]
		sp := bytes.IndexByte(line, ' ')
		p := proc{pid: pid, state: "?", cmd: "?", writes: sp >= 0 && sp+2 < len(line) && line[sp+2] == 'w'}
		if comm, err := readFile(dir + "/comm"); err == nil {
			p.cmd = strings.TrimSpace(string(comm))
		}
		if stat, err := readFile(dir + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) {
				p.state = procState(stat[i+2])
			}
		}
		if cmdline, err := readFile(dir + "/cmdline"); err == nil && len(cmdline) > 0 {
			p.cmd = strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
		out = append(out, p)
	}
	return out
}

// pids lists the processes in /proc, in increasing order.
func pids() []int {
	fd, err := syscall.Open("/proc", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	var out []int
	buf := make([]byte, 8192)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		_, _, names := syscall.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			pid, err := strconv.Atoi(name)
			if err != nil {
				continue
			}
			// Insertion: /proc lists pids in order already, almost always.
			i := len(out)
			out = append(out, pid)
			for ; i > 0 && out[i-1] > pid; i-- {
				out[i] = out[i-1]
			}
			out[i] = pid
		}
	}
	return out
}

func procState(c byte) string {
	switch c {
	case 'R':
		return "running"
	case 'S':
		return "sleeping"
	case 'D':
		return "waiting on disk"
	case 'T':
		return "STOPPED"
	case 't':
		return "stopped by a tracer"
	case 'Z':
		return "zombie"
	}
	return string(c)
}
