// Command bus broadcasts short messages between processes on one Linux
// machine, through System V semaphores and shared memory, with no daemon.
// It speaks the format of maandree's bus and libbus, with a broadcast
// protocol that does not deadlock (see proto.go).
//
//	bus create [-x] [PATH]
//	bus remove PATH
//	bus broadcast [-n] [-t DURATION] [-0] PATH [MESSAGE | -]
//	bus listen [-t DURATION] [-m REGEXP] [-r FD] [-0] PATH [COMMAND]
//	bus wait [-t DURATION] [-m REGEXP] [-r FD] [-0] PATH [COMMAND]
//	bus chmod PERMISSIONS PATH
//	bus chown OWNER[:GROUP] PATH
//	bus chgrp GROUP PATH
//	bus info PATH
//	bus help [SUBCOMMAND]
//
// Exit status: 0 done, 1 failed, 2 usage, 124 timed out; wait with COMMAND
// exits with the command's status.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
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
	var usage *usageError
	var status exitError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "bus: %s\n%s\n", usage.msg, synopsis(usage.name))
		return 2
	}
	fmt.Fprintf(stderr, "bus: %v\n", err)
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
				return &usageError{msg: fmt.Sprintf("no subcommand %q", name), name: "help"}
			}
		}
		fmt.Fprint(stdout, helpText(name))
		return nil
	case "create":
		path := ""
		if len(o.args) == 1 {
			path = o.args[0]
		}
		p, err := Create(path, o.excl)
		if err == nil && path == "" {
			fmt.Fprintln(stdout, p)
		}
		return err
	case "remove":
		note, err := Remove(o.args[0])
		if note != "" {
			fmt.Fprintf(stderr, "bus: %s\n", note)
		}
		return err
	case "broadcast":
		return broadcast(o, stdin, stderr)
	case "listen", "wait":
		return listen(o, deadline, stdout, stderr)
	case "chmod":
		mode, err := parseMode(o.args[0])
		if err != nil {
			return &usageError{msg: err.Error(), name: "chmod"}
		}
		return Chmod(o.args[1], mode)
	case "chown", "chgrp":
		uid, gid, err := parseOwner(o.args[0], o.name == "chgrp")
		if err != nil {
			var u *usageError
			if errors.As(err, &u) {
				return err
			}
			return fmt.Errorf("%s: %w", o.args[1], err)
		}
		return Chown(o.args[1], uid, gid)
	case "info":
		return info(o.args[0], stdout)
	}
	return &usageError{msg: "unknown subcommand " + o.name}
}

// broadcast sends the message operand, or each record of stdin. In a
// stream, a record that times out is reported and the stream goes on (a
// bridge must not stop for one stuck listener); the status is then 124.
func broadcast(o *options, stdin io.Reader, stderr io.Writer) error {
	path := o.args[0]
	if len(o.args) == 2 && o.args[1] != "-" {
		msg := []byte(o.args[1])
		if err := checkMessage(msg); err != nil {
			return fmt.Errorf("%s: %w; nothing sent", path, err)
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
	r := bufio.NewReaderSize(stdin, shmSize+1)
	var timedOut error
	for n := 1; ; n++ {
		rec, err := r.ReadSlice(sep)
		if err == io.EOF && len(rec) == 0 {
			return timedOut
		}
		if err == bufio.ErrBufferFull {
			return fmt.Errorf("%s: stdin %s %d: message too long (at most %d bytes); it and what follows were not sent", path, what, n, maxMessage)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: reading stdin: %w", path, err)
		}
		rec = bytes.TrimSuffix(rec, []byte{sep})
		if cerr := checkMessage(rec); cerr != nil {
			return fmt.Errorf("%s: stdin %s %d: %w; it and what follows were not sent", path, what, n, cerr)
		}
		if serr := send(b, rec, o); errors.Is(serr, errTimeout) {
			fmt.Fprintf(stderr, "bus: stdin %s %d: %v\n", what, n, serr)
			timedOut = exitError(124)
		} else if serr != nil {
			return serr
		}
		if err == io.EOF {
			return timedOut
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
func listen(o *options, deadline time.Time, stdout, stderr io.Writer) error {
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
		f.Write([]byte{'\n'})
		f.Close()
	}
	var run *runner
	if len(o.args) == 2 {
		run = newRunner(o.args[1], stdout, stderr)
		if !once {
			defer run.stop()
		}
	} else {
		b.raw = true // nothing else runs in this process
	}
	sep := byte('\n')
	if o.nul {
		sep = 0
	}
	var buf [shmSize + 1]byte // the message and its separator
	emit := func(n int) error {
		buf[n] = sep
		if _, err := stdout.Write(buf[:n+1]); err != nil {
			return fmt.Errorf("writing a message: %w", err)
		}
		return nil
	}
	for got := 0; ; {
		n, err := b.Next((*[shmSize]byte)(buf[:shmSize]), deadline)
		if err != nil {
			return timeoutWords(b, err, o, got)
		}
		matched := o.match == nil || o.match.Match(buf[:n])
		if matched {
			got++
		}
		if once && matched {
			leaveErr := b.Leave()
			if run != nil {
				return run.wait(buf[:n])
			}
			if err := emit(n); err != nil {
				return err
			}
			return leaveErr
		}
		if err := b.CountOut(); err != nil {
			return err
		}
		// Printed once counted out, not after the round: a round that a
		// stopped listener holds open does not hold up this one's output.
		if matched && run == nil {
			if err := emit(n); err != nil {
				return err
			}
		}
		err = b.Rearm(deadline)
		if matched && run != nil {
			run.start(buf[:n]) // the round is over: a command never holds it up
		}
		if err != nil {
			return timeoutWords(b, err, o, got)
		}
	}
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

// runner runs sh -c COMMAND with $msg for each message, started in message
// order by one goroutine, so that starting a process never holds up the
// listener's round. One more goroutine reaps every child with wait4(-1):
// one thread blocked however many commands run at once, where a Wait per
// child would hold a thread each. os.StartProcess, not os/exec, which would
// add half a megabyte to the binary.
type runner struct {
	command        string
	stdout, stderr io.Writer
	queue          chan string
	started        chan struct{} // one per child started, for the reaper
	done           chan struct{}

	sh      string
	argv    []string
	attr    *os.ProcAttr
	spawned int
}

func newRunner(command string, stdout, stderr io.Writer) *runner {
	// Each start leaves a few kilobytes of garbage (argv, environment), and
	// the collector would let 4 MB of it pile up before its first cycle: a
	// listener must stay small on a router, however many commands it runs.
	debug.SetGCPercent(10)
	return &runner{command: command, stdout: stdout, stderr: stderr}
}

// spawn starts sh -c COMMAND with $msg set to msg. Found once, the shell's
// path, argv and environment are reused: garbage per start is what keeps a
// listener's heap, so its resident memory, growing with the commands run.
func (r *runner) spawn(msg string) (*os.Process, error) {
	if r.attr == nil {
		sh, err := lookPath("sh")
		if err != nil {
			return nil, err
		}
		stdout, stderr := fileFor(r.stdout), fileFor(r.stderr)
		r.sh, r.argv = sh, []string{"sh", "-c", r.command}
		r.attr = &os.ProcAttr{Env: append(os.Environ(), ""), Files: []*os.File{nil, stdout, stderr}}
	}
	r.attr.Env[len(r.attr.Env)-1] = "msg=" + msg
	return os.StartProcess(r.sh, r.argv, r.attr)
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
	go func() { io.Copy(w, pr); pr.Close() }()
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
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH", name)
}

func (r *runner) start(msg []byte) {
	if r.queue == nil {
		r.queue = make(chan string, 1024)
		r.started = make(chan struct{}, 1024)
		r.done = make(chan struct{})
		go r.spawnAll()
		go r.reap()
	}
	r.queue <- string(msg)
}

func (r *runner) spawnAll() {
	defer close(r.done)
	for m := range r.queue {
		p, err := r.spawn(m)
		if err != nil {
			fmt.Fprintf(r.stderr, "bus: running the command: %v\n", err)
			continue
		}
		p.Release() // the reaper waits for it, by pid
		r.started <- struct{}{}
		// Freed heap pages stay resident until the scavenger's slow return;
		// giving them back every 64 starts keeps a command-running
		// listener at 3.9 MB resident after 2,000 commands, not 5.0.
		if r.spawned++; r.spawned%64 == 0 {
			debug.FreeOSMemory()
		}
	}
}

// reap waits for children while any run, and for a start when none does.
func (r *runner) reap() {
	running := 0
	for {
		if running == 0 {
			<-r.started
			running++
		}
		for drained := false; !drained; {
			select {
			case <-r.started:
				running++
			default:
				drained = true
			}
		}
		pid, err := syscall.Wait4(-1, nil, 0, nil)
		switch {
		case pid > 0:
			running--
		case err == syscall.ECHILD:
			running = 0
		}
	}
}

// stop waits until every queued command has started.
func (r *runner) stop() {
	if r.queue != nil {
		close(r.queue)
		<-r.done
	}
}

// wait runs the command for msg and returns its exit status (128 + the
// signal's number if a signal ended it, as shells report it).
func (r *runner) wait(msg []byte) error {
	p, err := r.spawn(string(msg))
	if err != nil {
		return fmt.Errorf("running the command: %w", err)
	}
	st, err := p.Wait()
	if err != nil {
		return fmt.Errorf("waiting for the command: %w", err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitError(128 + int(ws.Signal()))
	}
	if code := st.ExitCode(); code != 0 {
		return exitError(code)
	}
	return nil
}

// info prints what a bus is made of and who uses it.
func info(path string, stdout io.Writer) error {
	stale, sem, shm, st, err := staleness(path)
	if err != nil {
		return err
	}
	objects := table{{"bus file", path, "owner " + userName(st.Uid), "group " + groupName(st.Gid), "mode " + modeString(st.Mode&0o777)}}
	semE, semOK := procObject(true, sem)
	shmE, shmOK := procObject(false, shm)
	for _, o := range []struct {
		name string
		key  int32
		e    procEntry
		ok   bool
	}{{"semaphores", sem, semE, semOK}, {"shared memory", shm, shmE, shmOK}} {
		if !o.ok {
			objects = append(objects, []string{o.name, fmt.Sprintf("key %d", o.key), "GONE"})
			continue
		}
		objects = append(objects, []string{o.name, fmt.Sprintf("key %d, id %d", o.key, o.e.id),
			"owner " + userName(o.e.uid), "group " + groupName(o.e.gid), "mode " + modeString(o.e.perms&0o777)})
	}
	objects.print(stdout)
	if stale {
		return failf(path, errStale, "stale bus: its objects are gone; `bus create %s` makes it anew, `bus remove %s` removes it", path, path)
	}
	semid := int(semE.id)
	var vals, ncnt, zcnt, pids [nsems]int
	for i := range nsems {
		var e syscall.Errno
		if vals[i], e = semctl(semid, i, semGetval, 0); e != 0 {
			fmt.Fprintf(stdout, "\nsemaphores cannot be read: %v (they need read permission)\n", e)
			return nil
		}
		ncnt[i], _ = semctl(semid, i, semGetn, 0)
		zcnt[i], _ = semctl(semid, i, semGetz, 0)
		pids[i], _ = semctl(semid, i, semGetpid, 0)
	}
	fmt.Fprintf(stdout, "\nlisteners: %d registered, %d copying a message\n", vals[semS], vals[semW])
	switch {
	case vals[semX] == 0 && vals[semN] > 0:
		fmt.Fprintf(stdout, "broadcast: in progress, published, waiting for %d listener(s) to take it\n", vals[semS])
	case vals[semX] == 0:
		fmt.Fprintf(stdout, "broadcast: in progress, waiting for listeners to finish copying\n")
	default:
		fmt.Fprintf(stdout, "broadcast: none in progress\n")
	}
	sems := table{{"semaphore", "value", "waiting to take", "waiting for 0", "last pid"}}
	for i, name := range []string{"S listeners", "W copying", "X writers' lock", "Q gate", "N publishing"} {
		sems = append(sems, []string{name, strconv.Itoa(vals[i]), strconv.Itoa(ncnt[i]), strconv.Itoa(zcnt[i]), strconv.Itoa(pids[i])})
	}
	fmt.Fprintln(stdout)
	sems.print(stdout)
	procs := attached(shm)
	fmt.Fprintf(stdout, "\n%d process(es) attached\n", len(procs))
	if len(procs) > 0 {
		t := table{{"pid", "state", "command"}}
		for _, p := range procs {
			t = append(t, []string{strconv.Itoa(p.pid), p.state, p.cmd})
		}
		t.print(stdout)
	}
	return nil
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
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

type proc struct {
	pid   int
	state string
	cmd   string
}

// attached lists the processes that have the segment of key mapped, from
// /proc/PID/maps, where it shows as /SYSV followed by the key in hex.
func attached(key int32) []proc {
	name := fmt.Sprintf("/SYSV%08x", uint32(key))
	dirs, _ := os.ReadDir("/proc")
	var out []proc
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		maps, err := os.ReadFile("/proc/" + d.Name() + "/maps")
		if err != nil || !bytes.Contains(maps, []byte(name)) {
			continue
		}
		p := proc{pid: pid, state: "?", cmd: "?"}
		if comm, err := os.ReadFile("/proc/" + d.Name() + "/comm"); err == nil {
			p.cmd = strings.TrimSpace(string(comm))
		}
		if stat, err := os.ReadFile("/proc/" + d.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) {
				p.state = procState(stat[i+2])
			}
		}
		if cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline"); err == nil && len(cmdline) > 0 {
			p.cmd = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b proc) int { return a.pid - b.pid })
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
