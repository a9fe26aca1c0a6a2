package main

// The architectures: the suite cross-compiled and run under qemu-user, and
// buses shared by binaries of different architectures.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The suite on every Linux architecture Go builds for (but the host's), and
// buses shared by processes of different architectures.
//
// TestArches cross-compiles the test binary for each architecture that
// TestKernels (kernels_test.go) does not boot a kernel of its own for and
// runs it: natively for 386 (an x86_64 kernel runs it, and checks what qemu
// hides: IPC_64, the 32-bit layouts and the 32-bit timespec of the compat
// calls, which the i386 guest's 32-bit kernel does not take), under
// qemu-user for mips (big-endian), riscv64 and loong64, with BUS_TEST_EXEC_PREFIX naming the same qemu so
// that the children the suite spawns run under it too. Each inner run has
// an IPC namespace of its own (as root), so that runs in parallel neither
// see nor touch each other's objects, nor anyone else's; each checks from
// inside its namespace that it left none there.
//
// TestMixedArches builds `bus` itself for big- and little-endian, 32- and
// 64-bit, direct-call and ipc() architectures and has them create, listen
// on, broadcast on and chmod one bus with the host's binary.
//
// Both are left out by -short (the inner runs use it: no recursion).

// archTarget is one architecture to build for and how to run its binaries.
type archTarget struct {
	name   string   // the subtest's name
	goarch string   // GOARCH
	env    []string // more build environment (GOMIPS)
	runner []string // the qemu command line; nil: run natively
	how    string   // how sysv_linux.go reaches the calls, for the logs
	// only, if not nil, are the tests of the run, where another target
	// runs the whole suite with the same calls; each must pass.
	only []string
}

// floatTests are what a mips hardfloat build runs: mips softfloat (the
// routers' build) makes the same o32 calls and runs the whole suite, and
// the builds differ only in floating point, which bus meets in -t's
// durations (time.ParseDuration) and the runtime meets in its collector's
// pacing and its timers: durations and timeouts, and long streams.
var floatTests = []string{"TestTimeouts", "TestTimeoutCountsOnlyMissed", "TestBurst", "TestBroadcastListen", "TestStressWriters"}

// qemuReserve is the guest address space given to 64-bit guests whose
// shmat qemu must place at a 256 KiB SHMLBA (mips64el, loongarch64): without
// -R, qemu 7.2's mmap_find_vma fails a process's second attachment with
// ENOMEM (seen with a probe: the first shmat works, the next fails, even
// with nothing else mapped). A reserved space makes it search its own map.
const qemuReserve = "0x8000000000"

// archTargets lists every Linux GOARCH of sysv_linux.go's table that a
// Debian machine can run: natively, or with Debian's qemu-user-static.
// (mips64 and ppc64, big-endian, are left out: Debian's qemu runs them, but
// no distribution ships Go binaries for them; their rows share the code of
// s390x and mips64le.)
var archTargets = []archTarget{
	{name: "amd64", goarch: "amd64", runner: []string{"qemu-x86_64-static"}, how: "direct, no IPC_64"},
	// qemu-i386 7.2 crashes in Go's runtime: 386 runs natively, on an
	// x86_64 kernel (CONFIG_IA32_EMULATION), which is also the one place
	// where the 32-bit layouts, IPC_64 and the 32-bit timespec of the compat
	// ipc() are checked for real (qemu strips IPC_64).
	{name: "386", goarch: "386", how: "ipc(), IPC_64"},
	{name: "arm", goarch: "arm", runner: []string{"qemu-arm-static"}, how: "direct, IPC_64"},
	{name: "arm64", goarch: "arm64", runner: []string{"qemu-aarch64-static"}, how: "direct, no IPC_64"},
	{name: "riscv64", goarch: "riscv64", runner: []string{"qemu-riscv64-static"}, how: "direct, no IPC_64"},
	{name: "loong64", goarch: "loong64", runner: []string{"qemu-loongarch64-static", "-R", qemuReserve}, how: "direct, no IPC_64"},
	{name: "mips", goarch: "mips", env: []string{"GOMIPS=hardfloat"}, runner: []string{"qemu-mips-static"}, how: "ipc(), IPC_64", only: floatTests},
	{name: "mips-softfloat", goarch: "mips", env: []string{"GOMIPS=softfloat"}, runner: []string{"qemu-mips-static"}, how: "ipc(), IPC_64"},
	{name: "mipsle", goarch: "mipsle", runner: []string{"qemu-mipsel-static"}, how: "ipc(), IPC_64"},
	{name: "mips64le", goarch: "mips64le", runner: []string{"qemu-mips64el-static", "-R", qemuReserve}, how: "direct, IPC_64"},
	{name: "ppc64le", goarch: "ppc64le", runner: []string{"qemu-ppc64le-static"}, how: "ipc(), IPC_64"},
	{name: "s390x", goarch: "s390x", runner: []string{"qemu-s390x-static"}, how: "ipc() of 5 arguments, IPC_64, SETVAL << 32"},
}

const (
	archBuildLimit = 15 * time.Minute // one cross-compilation, std included when the cache is cold
	archRunLimit   = 10 * time.Minute // one inner run of the suite (both scaled, within the deadline)
	// archNeeds is what TestArches asks of the test binary's -timeout.
	archNeeds = 25 * time.Minute
)

// emulators hands out the places of the emulated runs, TestArches' and
// TestKernels' together (both are parallel tests; TestMain raises go
// test's -parallel so that it does not bound them first): 3 at once on a
// machine of 2 cores, as a run idles a quarter of its time and more (it
// waits out the timeouts its tests expect; a malta guest's qemu used 2m24s
// of CPU in 6m37s), and the longest expected run first of those waiting,
// so that the short ones fill the end. (2 at once left the machine 27%
// idle; 4 at once took longer than 3: each run's start measured slower,
// which stretched its waits, and waiting costs CPU under emulation.)
var emulators = &emulatorPlaces{free: 3}

// emulatedCost is what each emulated run took in a quiet run of the whole
// suite (go test -v prints them): only their order matters.
var emulatedCost = map[string]time.Duration{
	"mipsel": 430 * time.Second, "mips64el": 397 * time.Second, "armhf": 244 * time.Second, "s390x": 242 * time.Second,
	"mips-softfloat": 235 * time.Second, "arm64": 216 * time.Second, "loong64": 189 * time.Second,
	"riscv64": 173 * time.Second, "riscv64-trixie": 173 * time.Second, "ppc64el": 153 * time.Second, "i386": 118 * time.Second, "386": 36 * time.Second,
	// The span's guests (spanTests only), as measured.
	"armhf-trixie": 42 * time.Second, "armhf-bullseye": 41 * time.Second, "arm64-trixie": 34 * time.Second,
	"arm64-bullseye": 33 * time.Second, "i386-bullseye": 18 * time.Second,
	"ppc64el-bookworm-backports": 47 * time.Second, "s390x-bookworm-backports": 44 * time.Second,
	"mips": 29 * time.Second, // floatTests only
}

type emulatorPlaces struct {
	mu      sync.Mutex
	free    int
	waiting []*emulatedRun
}

type emulatedRun struct {
	cost  time.Duration
	start chan struct{}
}

// take waits for a place for the run named name; release gives it back.
func (e *emulatorPlaces) take(name string) (release func()) {
	r := &emulatedRun{cost: emulatedCost[name], start: make(chan struct{})}
	e.mu.Lock()
	e.waiting = append(e.waiting, r)
	e.handOut()
	e.mu.Unlock()
	<-r.start
	return func() {
		e.mu.Lock()
		e.free++
		e.handOut()
		e.mu.Unlock()
	}
}

func (e *emulatorPlaces) handOut() {
	for e.free > 0 && len(e.waiting) > 0 {
		i := 0
		for j, r := range e.waiting {
			if r.cost > e.waiting[i].cost {
				i = j
			}
		}
		close(e.waiting[i].start)
		e.waiting = slices.Delete(e.waiting, i, i+1)
		e.free--
	}
}

// innerSkip is the inner runs' -test.skip.
const innerSkip = "^(TestArches|TestMixedArches|TestSpinModels|TestKernels)$"

// nativeTests must pass, not skip, in a native run of another architecture
// (386): they use IPC_STAT and IPC_SET (chmod, chown, info) and timeouts,
// whose layouts qemu would hide.
var nativeTests = []string{"TestChmodChown", "TestInfo", "TestTimeouts"}

// targetFor returns the target of a name in archTargets.
func targetFor(t *testing.T, name string) archTarget {
	for _, a := range archTargets {
		if a.name == name {
			return a
		}
	}
	t.Fatalf("no target %q", name)
	return archTarget{}
}

// isHost reports whether a is what this test binary was built as.
func (a archTarget) isHost() bool {
	return a.goarch == runtime.GOARCH && len(a.env) == 0
}

// prefix is the command line that runs a binary for a: its qemu, or
// nothing to run it natively. 386 runs natively only on an amd64 host.
func (a archTarget) prefix() []string {
	if a.goarch == "386" && runtime.GOARCH != "amd64" {
		return []string{"qemu-i386-static"}
	}
	return a.runner
}

// command returns the argv that runs binary for a.
func (a archTarget) command(binary string) []string {
	return append(slices.Clone(a.prefix()), binary)
}

// checkRunner fails t if a's qemu is not installed: no architecture may be
// left out quietly.
func (a archTarget) checkRunner(t *testing.T) {
	t.Helper()
	if len(a.prefix()) == 0 {
		return
	}
	if _, err := exec.LookPath(a.prefix()[0]); err != nil {
		t.Fatalf("%s: %v: install qemu-user-static (Debian) to test this architecture", a.name, err)
	}
}

// goTool runs `go ARGS...` for target a, bounded by limit, and returns
// what went wrong, or "" (it may run off the test's goroutine).
func goTool(a archTarget, limit time.Duration, args ...string) string {
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, gotool, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+a.goarch, "GOFLAGS=")
	cmd.Env = append(cmd.Env, a.env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Sprintf("%s: go %s: not done after %v", a.name, strings.Join(args, " "), limit)
	}
	if err != nil {
		return fmt.Sprintf("%s: go %s: %v\n%s", a.name, strings.Join(args, " "), err, out)
	}
	return ""
}

func TestArches(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the suite and runs it under qemu for every architecture; -short leaves it out")
	}
	if d, ok := t.Deadline(); ok && time.Until(d) < archNeeds {
		t.Fatalf("TestArches needs up to %v and the test binary's -timeout leaves %v: "+
			"run go test -timeout 80m (or -short, which leaves it out)", archNeeds, time.Until(d).Round(time.Second))
	}
	t.Parallel() // beside TestKernels, sharing emulators
	root := os.Getuid() == 0
	if !root {
		t.Log("not root: no IPC namespaces; the architectures run one at a time, and the permission tests skip")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)            // the inner suites run children as another user
	alone := make(chan struct{}, 1) // when not root
	start := time.Now()
	t.Run("each", func(t *testing.T) {
		for _, a := range archTargets {
			if a.isHost() {
				continue // the outer run is this architecture's
			}
			if k, ok := ownKernel(a); ok {
				t.Logf("%s: on its own kernel in TestKernels/each/%s", a.name, k)
				continue
			}
			t.Run(a.name, func(t *testing.T) {
				t.Parallel()
				a.checkRunner(t)
				if !root {
					alone <- struct{}{}
					defer func() { <-alone }()
				}
				defer emulators.take(a.name)()
				runArch(t, a, dir, root)
			})
		}
	})
	t.Logf("all architectures: %v", time.Since(start).Round(time.Second))
}

// innerResultRE matches a top-level test's result in -test.v output,
// anywhere in a line: a guest's serial console can run another process's
// output into it. A subtest's name has a slash, which it does not match.
// The duration may be negative: a malta guest's clock, after the guest
// stood still for seconds, went back (TestKernels logs it).
var innerResultRE = lazyRE(`--- (PASS|FAIL|SKIP): (\w+) \((-?[0-9.]+)s\)`)

// innerTally is what an inner run's -test.v output says of its top-level
// tests: by result, and the slowest with their times.
type innerTally struct {
	passed, failed, skipped []string
	slowest                 []string // "TestX 1.2s", the slowest first
	negative                []string // "TestX -4.55s": the clock went back
}

func tallyInner(text string, slowest int) (r innerTally) {
	type timed struct {
		name string
		secs float64
	}
	var slow []timed
	for _, m := range innerResultRE().FindAllStringSubmatch(text, -1) {
		switch m[1] {
		case "PASS":
			r.passed = append(r.passed, m[2])
		case "FAIL":
			r.failed = append(r.failed, m[2])
		case "SKIP":
			r.skipped = append(r.skipped, m[2])
		}
		secs, _ := strconv.ParseFloat(m[3], 64)
		slow = append(slow, timed{m[2], secs})
		if secs < 0 {
			r.negative = append(r.negative, m[2]+" "+m[3]+"s")
		}
	}
	sort.Slice(slow, func(i, j int) bool { return slow[i].secs > slow[j].secs })
	for _, s := range slow[:min(slowest, len(slow))] {
		r.slowest = append(r.slowest, fmt.Sprintf("%s %.1fs", s.name, s.secs))
	}
	return r
}

// runArch builds the test binary for a and runs the suite with it.
// withinDeadline is d, scaled, but ending a minute before t's deadline, so
// that a run out of time is reported by its test rather than by -timeout.
func withinDeadline(t *testing.T, d time.Duration) time.Duration {
	d = scaled(d)
	if end, ok := t.Deadline(); ok {
		d = min(d, time.Until(end)-time.Minute)
	}
	return max(d, time.Minute)
}

// privateIPC: it runs as root, in an IPC namespace of its own.
func runArch(t *testing.T, a archTarget, dir string, privateIPC bool) {
	bin := filepath.Join(dir, "bus.test."+a.name)
	t0 := time.Now()
	if err := goTool(a, withinDeadline(t, archBuildLimit), "test", "-c", "-o", bin, "."); err != "" {
		t.Fatal(err)
	}
	built := time.Since(t0)

	// -test.short: no recursion into TestArches, and the suite's big loops
	// scaled down. -test.skip leaves out what runs no code of the
	// architecture (it would only repeat the host's run), so that the inner
	// output has no SKIP line of its own making (a SKIP there fails the
	// architecture): the drivers here, and the spin model checks, which run
	// host tools on testdata/*.pml (half of each inner run's time).
	runLimit := withinDeadline(t, archRunLimit)
	inner := runLimit - runLimit/10 // its own -timeout says which test hung
	argv := append(a.command(bin), "-test.short", "-test.v", "-test.count=1",
		"-test.skip", innerSkip, "-test.timeout", inner.String())
	if a.only != nil {
		argv = append(argv, "-test.run", "^("+strings.Join(a.only, "|")+")$")
	}
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "BUS_TEST_EXEC_PREFIX="+strings.Join(a.prefix(), " "), ownIPC+"=0")
	// Its own IPC namespace, which goes with its objects when its last
	// process exits.
	if privateIPC {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}
		cmd.Env = append(cmd.Env, ownIPC+"=1") // it checks that it left none
	}
	text, ran, runErr := runLogged(t, cmd, filepath.Join(dir, "out."+a.name+".txt"))

	r := tallyInner(text, 3)
	passed, skipped, slowest := r.passed, r.skipped, r.slowest
	runner := "native"
	if len(a.prefix()) > 0 {
		runner = strings.Join(a.prefix(), " ")
	}
	verdict := "ok"
	if runErr != nil {
		verdict = "FAILED"
	}
	t.Logf("%s (%s; %s): build %v, run %v: %s, %d tests passed; slowest: %s",
		a.name, a.how, runner, built.Round(100*time.Millisecond), ran.Round(100*time.Millisecond),
		verdict, len(passed), strings.Join(slowest, ", "))

	if runErr != nil || len(passed) == 0 || len(skipped) > 0 {
		// The whole output, in the test's log: a file would outlive the
		// run or go with its folder.
		t.Logf("%s: the inner run's whole output:\n%s", a.name, text)
	}
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: still running after %v: killed; its output:\n%s", a.name, runLimit, innerExcerpt(text))
	case runErr != nil:
		t.Fatalf("%s: %v; what failed:\n%s", a.name, runErr, innerExcerpt(text))
	case len(passed) == 0:
		t.Fatalf("%s: no test passed; its output:\n%s", a.name, innerExcerpt(text))
	case len(skipped) > 0 && privateIPC:
		t.Fatalf("%s: tests skipped in the inner run (every one must run on every architecture): %v", a.name, skipped)
	case len(skipped) > 0:
		t.Logf("%s: skipped, as they do for a user who is not root: %v", a.name, skipped)
	}
	for _, name := range a.only {
		if !slices.Contains(passed, name) {
			t.Errorf("%s: %s did not pass: the run is only %v", a.name, name, a.only)
		}
	}
	if len(a.prefix()) == 0 {
		for _, name := range nativeTests {
			if !slices.Contains(passed, name) && (privateIPC || !slices.Contains(skipped, name)) {
				t.Errorf("%s: %s did not pass in the native run: it is what checks IPC_STAT, IPC_SET and timeouts where qemu would hide them", a.name, name)
			}
		}
	}
}

// innerExcerpt picks out of an inner -test.v run's output what says why it
// failed: each failed top-level test from its === RUN line, a panic (a
// -test.timeout names the tests still running), or else the last lines.
func innerExcerpt(text string) string {
	const most = 80 // lines per part
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	clip := func(part []string) string {
		if len(part) > most {
			part = append([]string{"\t..."}, part[len(part)-most:]...)
		}
		return strings.Join(part, "\n")
	}
	var parts []string
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") {
			parts = append(parts, strings.Join(lines[i:min(len(lines), i+30)], "\n"))
			break
		}
		name, ok := strings.CutPrefix(l, "--- FAIL: ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		from := i
		for from > 0 && lines[from] != "=== RUN   "+name {
			from--
		}
		to := i + 1
		for to < len(lines) && strings.HasPrefix(lines[to], " ") {
			to++
		}
		parts = append(parts, clip(lines[from:to]))
	}
	if len(parts) == 0 {
		parts = append(parts, clip(lines))
	}
	return strings.Join(parts, "\n")
}

// runExcerpt is what an inner run printed while the top-level test name
// ran: from its "=== RUN" line to the next top-level one, for a test with
// no result line (a console can mangle one).
func runExcerpt(text, name string) string {
	const most = 60
	lines := strings.Split(text, "\n")
	from := slices.IndexFunc(lines, func(l string) bool { return strings.HasSuffix(l, "=== RUN   "+name) })
	if from < 0 {
		return "\t(no \"=== RUN   " + name + "\" line)"
	}
	to := from + 1
	for to < len(lines) && (!strings.Contains(lines[to], "=== RUN   ") || strings.Contains(lines[to], "=== RUN   "+name+"/")) {
		to++
	}
	part := lines[from:min(to+1, len(lines))]
	if len(part) > most {
		part = append(append(slices.Clone(part[:most/2]), "\t..."), part[len(part)-most/2:]...)
	}
	return strings.Join(part, "\n")
}

// runLogged runs cmd (made with exec.CommandContext) in a process group of
// its own, so that its context's end kills its children too, and kills
// whatever the group left running after. Its output goes to the file
// logPath, not a pipe: a child left running cannot hold up Wait. It
// returns that output, the run's wall time and its error.
func runLogged(t *testing.T, cmd *exec.Cmd, logPath string) (text string, ran time.Duration, err error) {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = scaled(10 * time.Second)
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	ran = time.Since(start)
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	data, _ := os.ReadFile(logPath)
	return string(data), ran, err
}

// peer is a bus binary of one architecture, and how to run it.
type peer struct {
	name string
	argv []string // the command line before bus's own arguments
	env  []string
}

func (p peer) command(args ...string) *exec.Cmd {
	cmd := exec.Command(p.argv[0], append(slices.Clone(p.argv[1:]), args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	return cmd
}

// hostPeer is this test binary, run as bus.
func hostPeer() peer {
	return peer{name: runtime.GOARCH + " (host)", argv: busCommand().Args, env: []string{asBus + "=1"}}
}

// buildPeers builds `bus` for each named target, in parallel.
func buildPeers(t *testing.T, names ...string) map[string]peer {
	t.Helper()
	dir := t.TempDir()
	peers := map[string]peer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan string, len(names))
	for _, name := range names {
		a := targetFor(t, name)
		a.checkRunner(t)
		bin := filepath.Join(dir, "bus."+a.name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := goTool(a, scaled(archBuildLimit), "build", "-trimpath", "-o", bin, "."); err != "" {
				errs <- err
				return
			}
			mu.Lock()
			peers[name] = peer{name: a.name, argv: a.command(bin)}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	return peers
}

// startPeerListener starts `bus listen -r 3 PATH` of p and returns once it
// has registered.
func startPeerListener(t *testing.T, p peer, path string) *listener {
	t.Helper()
	cmd := p.command("listen", "-r", "3", path)
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+xdgDir(t))
	return startReady(t, cmd, p.name+" listener")
}

// mixedMessages are n messages from sender, of varied lengths and UTF-8,
// the last one as long as a message can be.
func mixedMessages(sender string, n int) []string {
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("0 %s %d %s", sender, i, strings.Repeat("é", i%40))
	}
	last := fmt.Sprintf("0 %s %d ", sender, n-1)
	msgs[n-1] = last + strings.Repeat("x", maxMessage-len(last))
	return msgs
}

// startBroadcaster starts `bus broadcast PATH -` of p, sending msgs, one a
// line, from its stdin.
func startBroadcaster(t *testing.T, p peer, path string, msgs []string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := p.command("broadcast", "-t", patience.String(), path, "-")
	cmd.Stdin = strings.NewReader(strings.Join(msgs, "\n") + "\n")
	errb := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = errb, errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, errb
}

func TestMixedArches(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bus for other architectures and runs them under qemu; -short leaves it out")
	}
	// mips: big-endian 32-bit, ipc(); arm: little-endian 32-bit, direct
	// calls with IPC_64; s390x: big-endian 64-bit, five-argument ipc(),
	// SETVAL in the high half.
	peers := buildPeers(t, "mips", "arm", "s390x")
	host := hostPeer()
	mips, arm, s390x := peers["mips"], peers["arm"], peers["s390x"]
	n := 200

	cases := []struct {
		name         string
		creator      peer
		listeners    []peer
		broadcasters []peer // at once, each its own numbered stream
	}{
		{"host broadcasts to mips, arm, s390x and host", host, []peer{mips, arm, s390x, host}, []peer{host}},
		{"mips broadcasts to host, host and arm on s390x's bus", s390x, []peer{host, host, arm}, []peer{mips}},
		{"arm broadcasts to host and s390x on mips's bus", mips, []peer{host, s390x}, []peer{arm}},
		{"s390x and host broadcast at once to mips and host", arm, []peer{mips, host}, []peer{s390x, host}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			path := filepath.Join(xdgDir(t), "mixed")
			t.Cleanup(func() { removeQuietly(path) })
			r := runCmd(t, c.creator.command("create", path), "")
			r.expect(t, 0, "")
			checkWireFormat(t, path)
			var ls []*listener
			for _, p := range c.listeners {
				ls = append(ls, startPeerListener(t, p, path))
			}
			streams := map[string][]string{}
			type sender struct {
				cmd  *exec.Cmd
				errb *syncBuffer
				name string
			}
			var senders []sender
			for i, p := range c.broadcasters {
				tag := fmt.Sprintf("%s#%d", p.name, i)
				streams[tag] = mixedMessages(strings.Fields(tag)[0]+"#"+strconv.Itoa(i), n)
				cmd, errb := startBroadcaster(t, p, path, streams[tag])
				senders = append(senders, sender{cmd, errb, tag})
			}
			for _, s := range senders {
				code, err := waitBounded(s.cmd, scaled(5*time.Minute))
				if err != nil || code != 0 {
					t.Fatalf("broadcaster %s: status %d (%v): %s", s.name, code, err, s.errb.String())
				}
			}
			// Each listener gets every stream whole and in order; streams
			// sent at once interleave.
			for i, l := range ls {
				next := map[string]int{}
				for range len(streams) * n {
					got := l.next()
					f := strings.Fields(got)
					var tag string
					for k, msgs := range streams {
						if len(f) > 1 && strings.Fields(msgs[0])[1] == f[1] {
							tag = k
						}
					}
					if tag == "" {
						t.Fatalf("listener %d (%s) got %.60q, from no broadcaster", i, c.listeners[i].name, got)
					}
					if want := streams[tag][next[tag]]; got != want {
						t.Fatalf("listener %d (%s): message %d of %s is %.60q, want %.60q", i, c.listeners[i].name, next[tag], tag, got, want)
					}
					next[tag]++
				}
			}
			checkIdle(t, path, len(ls))
			t.Logf("%d message(s) from %d broadcaster(s) to %d listeners: %v", len(streams)*n, len(senders), len(ls), time.Since(start).Round(time.Millisecond))
		})
	}

	// chmod by one architecture, read back by the others, through IPC_STAT
	// and IPC_SET of each (qemu translates the layouts: the native 386 run
	// of TestChmodChown checks them for real).
	t.Run("chmod and info across architectures", func(t *testing.T) {
		path := filepath.Join(xdgDir(t), "modes")
		t.Cleanup(func() { removeQuietly(path) })
		runCmd(t, s390x.command("create", path), "").expect(t, 0, "")
		for _, step := range []struct {
			by      peer
			perm    string
			file    uint32
			objects uint32
			info    string
		}{
			{s390x, "750", 0o640, 0o660, "mode rw-rw----"},
			{mips, "+o", 0o644, 0o666, "mode rw-rw-rw-"},
			{arm, "u", 0o600, 0o600, "mode rw-------"},
			{host, "go", 0o044, 0o066, "mode ---rw-rw-"},
		} {
			runCmd(t, step.by.command("chmod", step.perm, path), "").expect(t, 0, "")
			checkModes(t, path, step.file, step.objects)
			for _, p := range []peer{host, mips, arm, s390x} {
				r := runCmd(t, p.command("info", path), "")
				r.expect(t, 0, "")
				if !strings.Contains(r.stdout, "semaphores") || strings.Count(r.stdout, step.info) < 2 {
					t.Fatalf("after %s's chmod %s, %s's info does not show %q for both objects:\n%s", step.by.name, step.perm, p.name, step.info, r.stdout)
				}
			}
		}
	})
}

// TestEmulatorPlaces: a freed place goes to the longest expected run of
// those waiting, whatever their order of arrival.
func TestEmulatorPlaces(t *testing.T) {
	e := &emulatorPlaces{free: 1}
	release := e.take("i386") // the only place
	order := make(chan string, 3)
	for _, name := range []string{"loong64", "mips64el", "s390x"} {
		go func() {
			defer e.take(name)()
			order <- name
		}()
	}
	for end := time.Now().Add(patience); ; {
		e.mu.Lock()
		n := len(e.waiting)
		e.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d of 3 runs waiting after %v", n, patience)
		}
		time.Sleep(time.Millisecond)
	}
	release()
	var got []string
	for range 3 {
		select {
		case name := <-order:
			got = append(got, name)
		case <-time.After(patience):
			t.Fatalf("places handed out: %v, then none for %v", got, patience)
		}
	}
	// s390x (153 s) before loong64 (151 s): the costs, not the arrival.
	if want := []string{"mips64el", "s390x", "loong64"}; !slices.Equal(got, want) {
		t.Errorf("places went to %v, want %v (longest first)", got, want)
	}
}
