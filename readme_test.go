package main

// The README's examples, run as written, so that a README that drifts from
// the binary fails the suite: the quick start (a transcript: lines starting
// with "$ " are commands, the others what they print) and every recipe (a
// script), each with sh in a folder of its own, with `bus` on PATH and
// ./bus being the test binary run as bus. The recipes' fixtures (the buses
// they name, stand-ins for the daemon and the tool they use, what they must
// have done) are below; TestBridge runs the MQTT bridge. TestReadmeCatchesDrift
// checks that altered examples fail, with a message saying which and why.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	readmeMaxLines   = 300 // a user's guide: measurements go in doc/
	readmeQuickStart = 60  // the quick start ends within this many lines
)

// readmeExample is one example of the README: an indented block of the
// Quick start or Recipes section.
type readmeExample struct {
	name   string // what messages call it
	line   int    // its first line in README
	intro  string // the paragraph before it, on one line
	script string // what sh runs: the block, unindented (a transcript's commands)
	// want is a transcript's output, a line each: a run of digits stands for
	// any number (a pid). nil for a recipe.
	want []string
}

// recipeFixture is what the test adds to a recipe: shell run before and
// after it in the same sh (paths mapped as the recipe's), what its stderr
// must be, and what it must have done.
type recipeFixture struct {
	before, after string
	stderr        string // a regexp the whole of stderr must match; "": empty
	check         func(r readmeRun) error
}

// readmeRun is what an example did.
type readmeRun struct {
	root   string // its folder: its /run, /tmp and /var are there
	pid    int    // the sh that ran it: its $$
	stdout string
}

// fixtureReady starts a listener on /run/bus/net of the fixture's own and
// goes on once it listens; its pid is $fixture.
const fixtureReady = `mkfifo /tmp/fixture.ready
bus listen -r 3 /run/bus/net 3>/tmp/fixture.ready >/tmp/fixture.got 2>/tmp/fixture.err &
fixture=$!
read _ </tmp/fixture.ready; rm /tmp/fixture.ready
`

// ipLines are what the stand-in for `ip monitor link` prints.
var ipLines = []string{
	"3: eth0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc pfifo_fast state DOWN mode DEFAULT group default qlen 1000",
	"3: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP mode DEFAULT group default qlen 1000",
}

// recipeFixtures are keyed by how a recipe's paragraph starts. Every recipe
// must have one, and every fixture a recipe.
var recipeFixtures = map[string]recipeFixture{
	// The stand-in mydaemon announces itself; the recipe's status says
	// whether the waiter saw it.
	"Start a daemon": {},
	// A message broadcast once the recipe has returned reaches the log;
	// removing the bus ends the listener (status 1, a line on stderr), and
	// so the loop.
	"Fan a bus into a log": {
		after:  "bus broadcast /run/bus/net \"$$ up eth0\"\nbus remove /run/bus/net\n",
		stderr: `^bus: \S+/run/bus/net: the bus was removed\n$`,
		check: func(r readmeRun) error {
			log, err := os.ReadFile(filepath.Join(r.root, "var/log/bus-net.log"))
			if err != nil {
				return err
			}
			want := `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ` + strconv.Itoa(r.pid) + " up eth0\n$"
			if !regexp.MustCompile(want).Match(log) {
				return fmt.Errorf("the log holds %q, want one line matching %q", log, want)
			}
			return nil
		},
	},
	// A listener of the fixture's gets each line of the stand-in ip, with
	// the recipe's pid.
	"Bridge a stream": {
		before: fixtureReady,
		after:  "bus remove /run/bus/net\n",
		check: func(r readmeRun) error {
			got, err := os.ReadFile(filepath.Join(r.root, "tmp/fixture.got"))
			if err != nil {
				return err
			}
			want := ""
			for _, l := range ipLines {
				want += strconv.Itoa(r.pid) + " " + l + "\n"
			}
			if string(got) != want {
				errs, _ := os.ReadFile(filepath.Join(r.root, "tmp/fixture.err"))
				return fmt.Errorf("a listener on the bus got %q, want %q (its stderr: %q)", got, want, errs)
			}
			return nil
		},
	},
	// A listener of the fixture's, stopped: the recipe must show it.
	// kill -STOP returns before the process has stopped; /proc says when
	// it has (a wait for that state, not a guess of how long it takes).
	"Find what holds a bus up": {
		before: fixtureReady + `kill -STOP $fixture
until read -r _ _ state _ </proc/$fixture/stat && [ "$state" = T ]; do :; done
`,
		// Ended as the others, with its bus: a listener killed would have the
		// shell (bash) say so on stderr.
		after: "bus remove /run/bus/net\nkill -CONT $fixture\n",
		check: func(r readmeRun) error {
			if !regexp.MustCompile(`(?m)^\d+ +STOPPED +\S`).MatchString(r.stdout) {
				return fmt.Errorf("no STOPPED process in what it printed: %q", r.stdout)
			}
			return nil
		},
	},
}

// readmeSection returns the lines of README's section titled title (a line
// underlined with - or =) and the line number of its first line.
func readmeSection(lines []string, title string) ([]string, int, error) {
	heading := func(i int) bool {
		return i+1 < len(lines) && len(lines[i]) > 0 && len(lines[i+1]) == len(lines[i]) &&
			(strings.Trim(lines[i+1], "-") == "" || strings.Trim(lines[i+1], "=") == "")
	}
	for i := range lines {
		if heading(i) && lines[i] == title {
			end := i + 2
			for end < len(lines) && !heading(end) {
				end++
			}
			return lines[i+2 : end], i + 3, nil
		}
	}
	return nil, 0, fmt.Errorf("README has no section %q", title)
}

// readmeBlocks returns the indented blocks of a section (first at line
// first), each with the paragraph before it.
func readmeBlocks(section []string, first int, what string) []readmeExample {
	var out []readmeExample
	var para []string
	ended := false // a blank line after para: the next line starts another
	for i := 0; i < len(section); i++ {
		l := section[i]
		switch {
		case strings.HasPrefix(l, "    "):
			ex := readmeExample{line: first + i, intro: strings.Join(para, " ")}
			var block []string
			for ; i < len(section) && (strings.HasPrefix(section[i], "    ") || strings.TrimSpace(section[i]) == ""); i++ {
				block = append(block, strings.TrimPrefix(section[i], "    "))
			}
			i--
			ex.script = strings.TrimRight(strings.Join(block, "\n"), "\n") + "\n"
			ex.name = fmt.Sprintf("%s (README line %d)", what, ex.line)
			out = append(out, ex)
			para = nil
		case strings.TrimSpace(l) == "":
			ended = true
		default:
			if ended {
				para, ended = nil, false
			}
			para = append(para, strings.TrimSpace(l))
		}
	}
	return out
}

// readmeExamples returns README's quick start and recipes.
func readmeExamples(t *testing.T) (quick readmeExample, recipes []readmeExample) {
	t.Helper()
	data, err := os.ReadFile("README")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	sec, first, err := readmeSection(lines, "Quick start")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(sec, first, "the quick start")
	if len(blocks) != 1 {
		t.Fatalf("README: the quick start has %d indented blocks, want 1 (a transcript)", len(blocks))
	}
	quick = blocks[0]
	var cmds []string
	for _, l := range strings.Split(strings.TrimSuffix(quick.script, "\n"), "\n") {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			cmds = append(cmds, c)
		} else {
			quick.want = append(quick.want, l)
		}
	}
	if len(cmds) == 0 || len(quick.want) == 0 {
		t.Fatalf(`%s: want commands (lines starting with "$ ") and what they print`, quick.name)
	}
	quick.script = strings.Join(cmds, "\n") + "\n"
	if sec, first, err = readmeSection(lines, "Recipes"); err != nil {
		t.Fatal(err)
	}
	recipes = readmeBlocks(sec, first, "recipe")
	if len(recipes) == 0 {
		t.Fatal("README: no recipes")
	}
	for i, r := range recipes {
		if !strings.HasSuffix(r.intro, ":") {
			t.Fatalf("%s: the paragraph before it must end with a colon: %q", r.name, r.intro)
		}
		recipes[i].name = fmt.Sprintf("recipe %q (README line %d)", recipeKey(r), r.line)
	}
	return quick, recipes
}

// recipeKey is the key of r's fixture, or its paragraph's first words.
func recipeKey(r readmeExample) string {
	for k := range recipeFixtures {
		if strings.HasPrefix(r.intro, k) {
			return k
		}
	}
	k, _, _ := strings.Cut(r.intro, ".")
	return k
}

// An example's absolute paths: /dev/null, and those under /run, /tmp and
// /var, which are mapped into its folder (lazy: every bus the suite starts
// is this binary).
var (
	readmeAbsRE = lazyRE(`(?:^|[\s'"=<>|;(])(/[^\s'"<>|;)]*)`)
	readmeMapRE = lazyRE(`(^|[\s'"=<>|;(])/(run|tmp|var)/`)
)

// busWrapper is a `bus` that runs the test binary as bus, as busCommand does.
func busWrapper() string {
	return "#!/bin/sh\n" + asBus + "=1; export " + asBus + "\nexec " + os.Getenv("BUS_TEST_EXEC_PREFIX") + " '" + testBinary() + "' \"$@\"\n"
}

// runExample runs ex with sh in a folder of its own (fx: a recipe's
// fixture; nil for the transcript) and says what went wrong, naming ex.
// Whatever it made is removed, buses included, however it ends.
func runExample(t *testing.T, ex readmeExample, fx *recipeFixture) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: %w\nit ran:\n%s", ex.name, err, ex.script)
		}
	}()
	for _, m := range readmeAbsRE().FindAllStringSubmatch(ex.script, -1) {
		p := m[1]
		if p != "/dev/null" && !strings.HasPrefix(p, "/run/") && !strings.HasPrefix(p, "/tmp/") && !strings.HasPrefix(p, "/var/") {
			return fmt.Errorf("it uses %s: the test maps only /run, /tmp and /var into a folder of its own (and lets /dev/null be)", p)
		}
	}
	root := t.TempDir()
	os.Chmod(root, 0o755)
	for _, d := range []string{"run/bus", "tmp", "var/log", "bin", "work"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	mapped := func(s string) string { return readmeMapRE().ReplaceAllString(s, "${1}"+root+"/$2/") }
	xdg := xdgDir(t)
	defer func() {
		// Every bus it left, removed; and checked gone.
		for _, dir := range []string{root, xdg} {
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if sem, shm, _, rerr := readBusFile(p); rerr == nil {
						removeObjects(sem, shm)
						checkGone(t, sem, shm)
					}
				}
				return nil
			})
		}
	}()

	wrapper := busWrapper()
	stubs := map[string]string{
		"bin/bus":  wrapper,
		"work/bus": wrapper, // ./bus, as right after the build
		"bin/mydaemon": "#!/bin/sh\n# The test's stand-in for a daemon that announces itself.\n" +
			mapped("exec bus broadcast /run/bus/init \"$$ ready\"\n"),
		"bin/ip": "#!/bin/sh\n# The test's stand-in for ip monitor link: two events, then the end.\n" +
			"[ \"$*\" = \"monitor link\" ] || { echo \"ip (the test's stand-in): not ip $*\" >&2; exit 2; }\n" +
			"printf '%s\\n' '" + strings.Join(ipLines, "' '") + "'\n",
	}
	for name, text := range stubs {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o755); err != nil {
			return err
		}
	}

	var script string
	if fx == nil {
		// A transcript: each command must succeed, as at a prompt.
		script = "set -e\n" + ex.script + "wait\n"
	} else {
		// The buses the recipe names, as made at boot.
		for _, m := range regexp.MustCompile(`/run/bus/[A-Za-z0-9._-]+`).FindAllString(ex.script+fx.before+fx.after, -1) {
			p := mapped(" " + m)[1:]
			if _, err := os.Stat(p); err == nil {
				continue
			}
			if _, err := Create(p, true); err != nil {
				return fmt.Errorf("making its bus %s: %v", m, err)
			}
		}
		script = fx.before + ex.script + "readme_status=$?\n" + fx.after + "wait\nexit $readme_status\n"
	}
	// The stand-ins as functions too: busybox's sh runs its own applets
	// (ip) before it looks at PATH.
	prelude := ""
	for _, name := range []string{"ip", "mydaemon"} {
		prelude += name + "() { " + filepath.Join(root, "bin", name) + " \"$@\"; }\n"
	}
	file := filepath.Join(root, "example.sh")
	if err := os.WriteFile(file, []byte(prelude+mapped(script)), 0o644); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", file)
	cmd.Dir = filepath.Join(root, "work")
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"),
		"XDG_RUNTIME_DIR="+xdg, "TMPDIR="+filepath.Join(root, "tmp"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, all of which goes when it times out, and when
	// it ends: nothing it started outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = patience // a process of it that keeps its output open
	runErr := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	run := readmeRun{root: root, stdout: stdout.String()}
	if cmd.Process != nil {
		run.pid = cmd.Process.Pid
	}
	says := fmt.Sprintf("stdout %q, stderr %q", stdout.String(), stderr.String())
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("not done within %v: killed (%s)", patience, says)
	case errors.Is(runErr, exec.ErrWaitDelay):
		return fmt.Errorf("a process it started kept its output open %v after it ended (%s)", patience, says)
	case runErr != nil:
		return fmt.Errorf("%v (%s)", runErr, says)
	}
	wantErr := "^$"
	if fx != nil && fx.stderr != "" {
		wantErr = fx.stderr
	}
	if !regexp.MustCompile(wantErr).MatchString(stderr.String()) {
		return fmt.Errorf("stderr %q does not match %q (stdout %q)", stderr.String(), wantErr, stdout.String())
	}
	if ex.want != nil {
		re := "^"
		for _, l := range ex.want {
			re += regexp.MustCompile(`[0-9]+`).ReplaceAllString(regexp.QuoteMeta(l), "[0-9]+") + "\n"
		}
		if !regexp.MustCompile(re + "$").MatchString(stdout.String()) {
			return fmt.Errorf("it printed %q, and README shows %q (a number stands for any number)",
				stdout.String(), strings.Join(ex.want, "\n")+"\n")
		}
	}
	if fx != nil && fx.check != nil {
		if err := fx.check(run); err != nil {
			return fmt.Errorf("%w (stdout %q, stderr %q)", err, stdout.String(), stderr.String())
		}
	}
	return nil
}

// TestReadme runs the README's quick start and recipes as they are
// written, and checks its shape: a user's guide, the quick start near the
// top.
func TestReadme(t *testing.T) {
	data, err := os.ReadFile("README")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > readmeMaxLines {
		t.Errorf("README has %d lines, over %d: it is a user's guide; measurements and reasoning go in doc/", n, readmeMaxLines)
	}
	quick, recipes := readmeExamples(t)
	if end := quick.line + strings.Count(quick.script, "\n") + len(quick.want) - 1; end > readmeQuickStart {
		t.Errorf("%s ends at line %d: a reader must find it within the first %d", quick.name, end, readmeQuickStart)
	}
	used := map[string]bool{}
	for _, r := range recipes {
		if _, ok := recipeFixtures[recipeKey(r)]; !ok {
			t.Errorf("%s has no fixture in readme_test.go's recipeFixtures: add one saying what it must do", r.name)
		}
		used[recipeKey(r)] = true
	}
	for k := range recipeFixtures {
		if !used[k] {
			t.Errorf("readme_test.go has a fixture for a recipe starting %q, and README has none: remove it, or fix its key", k)
		}
	}
	if t.Failed() {
		return
	}
	t.Run("quick start", func(t *testing.T) {
		if err := runExample(t, quick, nil); err != nil {
			t.Fatal(err)
		}
	})
	for _, r := range recipes {
		fx := recipeFixtures[recipeKey(r)]
		t.Run(recipeKey(r), func(t *testing.T) {
			start := time.Now()
			if err := runExample(t, r, &fx); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: ran in %v", r.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestReadmeCatchesDrift checks that TestReadme's runs can fail: the quick
// start with what it prints altered, and each recipe with its first bus
// subcommand misspelt, must each fail, saying which example and why.
func TestReadmeCatchesDrift(t *testing.T) {
	quick, recipes := readmeExamples(t)
	t.Run("quick start's output", func(t *testing.T) {
		q := quick
		q.want = append([]string(nil), q.want...)
		q.want[0] += " (altered)"
		err := runExample(t, q, nil)
		if err == nil || !strings.Contains(err.Error(), "README shows") || !strings.HasPrefix(err.Error(), quick.name) {
			t.Fatalf("the quick start with its output altered: got %v, want a failure naming it and what it printed", err)
		}
		t.Logf("caught: %.200s", err)
	})
	sub := regexp.MustCompile(`\bbus (create|remove|broadcast|listen|wait|info)\b`)
	for _, r := range recipes {
		fx := recipeFixtures[recipeKey(r)]
		t.Run(recipeKey(r), func(t *testing.T) {
			loc := sub.FindStringSubmatchIndex(r.script)
			if loc == nil {
				t.Fatalf("%s runs no bus subcommand", r.name)
			}
			bad := r
			bad.script = r.script[:loc[2]] + "no-such-" + r.script[loc[2]:]
			err := runExample(t, bad, &fx)
			if err == nil || !strings.HasPrefix(err.Error(), r.name) {
				t.Fatalf("%s with `bus no-such-%s`: got %v, want a failure naming it", r.name, r.script[loc[2]:loc[3]], err)
			}
			t.Logf("caught: %.200s", err)
		})
	}
}
