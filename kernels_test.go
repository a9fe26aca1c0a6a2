// The suite on Debian's own kernels: TestKernels boots each architecture
// Debian builds a kernel for under qemu-system, with an initramfs of
// busybox-static and the cross-compiled test binary, and runs there the
// -short suite that TestArches runs under qemu-user. qemu-user translates
// every System V call before the host's kernel sees it (it strips IPC_64 and
// rewrites each layout); in a guest the architecture's own kernel answers.
// The kernel and busybox come from Debian's archive (apt-get download),
// cached outside the repository; a missing qemu-system or kernel fails the
// test. Each architecture also boots the kernels of the releases before
// and after bookworm's (spanReleases) with a named part of the suite
// (spanTests), and riscv64 boots trixie's. Left out by -short (the inner
// runs use it).

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kernelTarget is one Debian architecture and how to boot its kernel.
type kernelTarget struct {
	name    string   // Debian's name for the architecture
	release string   // Debian's suite: "" is bookworm, the host's own
	span    bool     // it runs spanTests only, not the whole suite
	goarch  string   // GOARCH
	env     []string // more build environment (GOARM)
	flavour string   // the kernel is linux-image-FLAVOUR
	image   string   // the file of the package's /boot that qemu boots
	qemu    []string // qemu-system and its machine
	console string   // the kernel's console
	mem     string   // -m
	machine string   // what uname -m says in the guest
	// notHere are tests that do not run on this kernel alone, and why.
	notHere map[string]string
	// replaces names the target of archTargets that TestArches no longer
	// runs under qemu-user, as this kernel runs it ("": none).
	replaces string
}

// maltaNotHere: in the malta guests TestKilledListeners stood still in two
// CI runs of three (mipsel once, mips64el once, both near message 109,000:
// a new listener not ready in 5 minutes, a killed one not reaped, qemu
// mostly idle), where the armmp, arm64, ppc64el, s390x, i386 and riscv64
// guests and the host pass it. Left out there until explained.
var maltaNotHere = map[string]string{
	"TestKilledListeners": "it stood still in 2 of 3 runs in the malta guests (mipsel, mips64el) near message 109,000, not yet explained; every other guest runs it",
}

// kernelTargets are the architectures of Debian 12 (bookworm, Linux 6.1)
// that Go builds for, and riscv64 on Debian 13's kernel. The rest of
// sysv_linux.go's table has no Debian kernel to be had: mips big-endian
// (Debian's last was 10's) and loong64 (in Debian's ports archive, not its
// main one): TestArches runs them under qemu-user. It also runs 386 natively, on the host's x86_64 kernel: the
// compat calls, which i386's own kernel does not take.
//
// The malta guests (mipsel, mips64el) stand still for seconds now and then
// on a loaded host, and their clock can then go back: tests printed
// durations of -0.59 to -13.71 s; with k x 2^32 ns added, the first four
// are 2 to 4 s, as if the kernel's clock arithmetic overflowed after a
// long stall (a guess; innerResultRE reads them, runKernel logs them). mipsel was left out for
// a while because of them; nothing measured in its guest pointed at bus
// (time.Sleep(1ms) 1.24 ms, an 8 ms semtimedop through ipc() 8.34 ms,
// median of 1,000 each).
var kernelTargets = []kernelTarget{
	// The order is the logs'; emulators starts the longest expected run first (emulatedCost).
	{name: "mipsel", notHere: maltaNotHere,
		machine: "mips", replaces: "mipsle", goarch: "mipsle", flavour: "4kc-malta", image: "vmlinuz",
		qemu: []string{"qemu-system-mipsel", "-M", "malta"}, console: "ttyS0", mem: "256"},
	{name: "armhf", machine: "armv7l", replaces: "arm", goarch: "arm", env: []string{"GOARM=7"}, flavour: "armmp", image: "vmlinuz",
		qemu: []string{"qemu-system-arm", "-M", "virt"}, console: "ttyAMA0", mem: "1024"},
	{name: "arm64", machine: "aarch64", replaces: "arm64", goarch: "arm64", flavour: "arm64", image: "vmlinuz",
		qemu: []string{"qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"}, console: "ttyAMA0", mem: "1024"},
	{name: "mips64el", notHere: maltaNotHere, machine: "mips64", replaces: "mips64le", goarch: "mips64le", flavour: "5kc-malta", image: "vmlinuz",
		qemu: []string{"qemu-system-mips64el", "-M", "malta", "-cpu", "5KEc"}, console: "ttyS0", mem: "256"},
	{name: "ppc64el", machine: "ppc64le", replaces: "ppc64le", goarch: "ppc64le", flavour: "powerpc64le", image: "vmlinux",
		qemu: []string{"qemu-system-ppc64", "-M", "pseries"}, console: "hvc0", mem: "1024"},
	{name: "s390x", machine: "s390x", replaces: "s390x", goarch: "s390x", flavour: "s390x", image: "vmlinuz",
		qemu: []string{"qemu-system-s390x", "-M", "s390-ccw-virtio"}, console: "ttysclp0", mem: "1024"},
	{name: "i386", machine: "i686", goarch: "386", flavour: "686", image: "vmlinuz",
		qemu: []string{"qemu-system-i386"}, console: "ttyS0", mem: "1024"},
	// riscv64, a release architecture since Debian 13 (trixie), on its
	// kernel, Linux 6.12, with the OpenSBI firmware that qemu-system-misc
	// ships (virt's default -bios): the whole suite.
	{name: "riscv64", release: "trixie", machine: "riscv64", replaces: "riscv64", goarch: "riscv64", flavour: "riscv64", image: "vmlinux",
		qemu: []string{"qemu-system-riscv64", "-M", "virt"}, console: "ttyS0", mem: "1024"},
}

// spanReleases are the kernels around bookworm's 6.1 that each
// architecture above also boots, where Debian's archive serves one, to run
// spanTests. Linux 5.10: bullseye's, for armhf, arm64 and i386, the
// architectures of bullseye's long-term support, the only ones its index
// still lists (Architectures: all amd64 arm64 armhf i386). Linux 6.12:
// trixie's for armhf and arm64; bookworm-backports' for ppc64el and s390x
// (the package registry these tests reach answered 404 for trixie's). Left
// out, as no index serves them: mipsel and i386 past 6.1 (trixie and
// bookworm-backports build neither), and 5.10 for the other four. Left out
// as broken: mips64el's 6.12 (bookworm-backports' 5kc-malta; trixie builds
// none) oopses under qemu's malta in the first read(2) of a tmpfs file
// into a Go heap page (__raw_copy_from_user), before bus's first call.
var spanReleases = map[string][]string{
	"bullseye":           {"armhf", "arm64", "i386"},
	"trixie":             {"armhf", "arm64"},
	"bookworm-backports": {"ppc64el", "s390x"},
}

// spanTests are what the span's guests run: every semop group of the
// protocol (join, release, count out, re-arm, leave, drop W; take, take
// nowait, publish, untake, finish, finish now, close gate, give up), the
// timeouts and the 32-bit timespecs (semtimedop_time64 and the old call,
// through ipc() where the architecture has it), IPC_STAT and IPC_SET
// (chmod, chown, info, the ownership check) and the objects' set-up.
var spanTests = []string{
	"TestCreateAtPath", "TestBroadcastListen", "TestWait", "TestTimeouts", "TestLongTimeout",
	"TestBusyNowait", "TestNowaitWaitsForListeners", "TestStreamGoesOnAfterTimeout", "TestGateDoesNotLeak",
	"TestSemtimedopTimes", "TestChmodChown", "TestInfo", "TestForgedBusFile",
}

func init() {
	for _, rel := range slices.Sorted(maps.Keys(spanReleases)) {
		for _, name := range spanReleases[rel] {
			for _, k := range kernelTargets {
				if k.name == name && k.release == "" {
					k.release, k.span, k.notHere, k.replaces = rel, true, nil, ""
					kernelTargets = append(kernelTargets, k)
				}
			}
		}
	}
}

// id names k: its subtest, its cache folder, its files.
func (k kernelTarget) id() string {
	if k.release == "" {
		return k.name
	}
	return k.name + "-" + k.release
}

// ownKernel names the kernel target that runs a in TestArches' stead.
func ownKernel(a archTarget) (string, bool) {
	for _, k := range kernelTargets {
		if k.replaces != "" && k.replaces == a.name {
			return k.id(), true
		}
	}
	return "", false
}

// notInGuests are the tests of the qemu-user runs that do not run in a
// guest, and why.
var notInGuests = map[string]string{
	"TestBridge":        "it needs mosquitto, a broker of the host's; busybox has none (and the bus side of the bridge is broadcast and listen, which the rest of the suite runs)",
	"TestManPagesLint":  "it runs the host's mandoc on bus.1 and bus.5: no code of the architecture",
	"TestLibbusMadeBus": "it builds the C yardstick with the host's cc, which busybox has not (every other trust test runs)",
}

const (
	// One guest, boot to power-off: ppc64el, the slowest, took 12 minutes
	// of CPU (14 on a machine loaded 5 times over).
	kernelRunLimit = 25 * time.Minute
	// kernelNeeds is what TestKernels asks of the test binary's -timeout.
	kernelNeeds = 40 * time.Minute
	// guestMark starts the lines the guest's /init writes about itself.
	guestMark = "bus-kernel:"
)

func TestKernels(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Debian's kernels under qemu-system for 8 architectures, and the span of releases; -short leaves it out")
	}
	if d, ok := t.Deadline(); ok && time.Until(d) < kernelNeeds {
		t.Fatalf("TestKernels needs up to %v and the test binary's -timeout leaves %v: "+
			"run go test -timeout 80m (or -short, which leaves it out)", kernelNeeds, time.Until(d).Round(time.Second))
	}
	t.Parallel() // beside TestArches, sharing emulators
	suite := qemuUserSuite(t)
	cache := kernelCache()
	dir := t.TempDir()
	start := time.Now()
	t.Run("each", func(t *testing.T) {
		for _, k := range kernelTargets {
			t.Run(k.id(), func(t *testing.T) {
				t.Parallel()
				if _, err := exec.LookPath(k.qemu[0]); err != nil {
					t.Fatalf("%s: %v: install qemu-system-arm, qemu-system-mips, qemu-system-ppc, qemu-system-misc and qemu-system-x86 (Debian)", k.id(), err)
				}
				defer emulators.take(k.id())()
				runKernel(t, k, cache, dir, suite)
			})
		}
	})
	t.Logf("all kernels: %v", time.Since(start).Round(time.Second))
}

// qemuUserSuite lists the top-level tests (and fuzz targets' seeds) that
// the qemu-user runs of TestArches run: the guests run the same.
func qemuUserSuite(t *testing.T) []string {
	out, err := exec.Command(os.Args[0], "-test.list", "^(Test|Fuzz)").Output()
	if err != nil {
		t.Fatalf("listing the suite: %v", err)
	}
	skip := regexp.MustCompile(innerSkip)
	var names []string
	for _, name := range strings.Fields(string(out)) {
		if !skip.MatchString(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatal("listing the suite: no tests")
	}
	return names
}

// kernelCache is where kernels and busybox are kept between runs, outside
// the repository.
func kernelCache() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "bus-kernels")
	}
	if os.Getuid() == 0 {
		return "/var/cache/bus-kernels"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "bus-kernels")
	}
	return filepath.Join(os.TempDir(), "bus-kernels")
}

// aptArgs is apt's state for the foreign architectures of a release, of
// its own in the cache: the host's dpkg is not told about them (no dpkg
// --add-architecture) and its package lists are not touched. Bookworm's
// ("") comes from the host's sources; another release's from a sources
// list of the test's own (aptSources), beside its state.
func aptArgs(cache, release string) []string {
	var arches []string
	for _, k := range kernelTargets {
		if k.release == release && !slices.Contains(arches, k.name) {
			arches = append(arches, k.name)
		}
	}
	state := filepath.Join(cache, "apt")
	if release != "" {
		state = filepath.Join(cache, "apt-"+release)
	}
	args := []string{"-q",
		"-o", "APT::Architectures=" + strings.Join(arches, ","),
		"-o", "Dir::State::Lists=" + filepath.Join(state, "lists"),
		"-o", "Dir::Cache=" + state,
		"-o", "Dir::State::status=/dev/null",
		"-o", "APT::Sandbox::User=root", // the download folder is root's
	}
	if release != "" {
		// Default-Release: the suite's own versions are the candidates, not
		// bookworm's beside a backports suite.
		args = append(args, "-o", "Dir::Etc::sourcelist="+filepath.Join(state, "sources.list"),
			"-o", "Dir::Etc::sourceparts="+filepath.Join(state, "parts"),
			"-o", "APT::Default-Release="+release)
	}
	return args
}

// aptSources writes the sources list of a release other than the host's:
// the host's Debian archive (as its own sources name it), that release,
// main, signed by Debian's archive keyring (which names every release's
// keys). A backports suite builds kernels, not busybox: its base suite is
// listed too.
func aptSources(cache, release string) error {
	uri, err := debianArchive()
	if err != nil {
		return err
	}
	state := filepath.Join(cache, "apt-"+release)
	if err := os.MkdirAll(filepath.Join(state, "parts"), 0o755); err != nil {
		return err
	}
	suites := []string{release}
	if base, ok := strings.CutSuffix(release, "-backports"); ok {
		suites = []string{base, release}
	}
	var lines string
	for _, suite := range suites {
		lines += "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] " + uri + " " + suite + " main\n"
	}
	return os.WriteFile(filepath.Join(state, "sources.list"), []byte(lines), 0o644)
}

// debianArchive is the URI of the Debian archive that the host's apt
// sources use for bookworm's main component (not its security archive).
func debianArchive() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.HasSuffix(f, ".sources") { // deb822 stanzas
			for _, stanza := range strings.Split(string(data), "\n\n") {
				fields := map[string]string{}
				for _, line := range strings.Split(stanza, "\n") {
					if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
						fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
					}
				}
				if slices.Contains(strings.Fields(fields["Suites"]), "bookworm") && fields["URIs"] != "" {
					return strings.Fields(fields["URIs"])[0], nil
				}
			}
			continue
		}
		for _, line := range strings.Split(string(data), "\n") { // deb [options] URI SUITE COMPONENT...
			f := strings.Fields(line)
			if len(f) > 0 && f[0] == "deb" {
				f = f[1:]
				if len(f) > 0 && strings.HasPrefix(f[0], "[") {
					for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
						f = f[1:]
					}
					f = f[min(1, len(f)):]
				}
				if len(f) >= 2 && f[1] == "bookworm" {
					return f[0], nil
				}
			}
		}
	}
	return "", fmt.Errorf("no Debian archive for bookworm in the host's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d): the kernels of other releases are fetched from the same archive")
}

var (
	aptMu      sync.Mutex // one apt at a time
	aptUpdated = map[string]bool{}
	aptLog     = map[string]string{} // what apt-get update said, by release
)

// aptRun runs an apt tool with a release's state, bounded.
func aptRun(cache, release, dir string, tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, append(aptArgs(cache, release), args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("not done after 5m")
	}
	return string(out), err
}

// fetchKernel returns the kernel and busybox of k, downloading them from
// Debian's archive unless the cache has them, and the packages' versions.
func fetchKernel(t *testing.T, k kernelTarget, cache string) (kernel, busybox, versions string) {
	t.Helper()
	dir := filepath.Join(cache, k.id())
	kernel, busybox = filepath.Join(dir, k.image), filepath.Join(dir, "busybox")
	// A cache without the kernel's configuration is from before it was
	// kept: fetched again, once.
	if v, err := os.ReadFile(filepath.Join(dir, "versions")); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "config")); err == nil {
			return kernel, busybox, strings.TrimSpace(string(v)) + " (cached in " + dir + ")"
		}
	}

	aptMu.Lock()
	defer aptMu.Unlock()
	state := filepath.Join(cache, "apt")
	if k.release != "" {
		state = filepath.Join(cache, "apt-"+k.release)
	}
	for _, d := range []string{"lists/partial", "archives/partial"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if !aptUpdated[k.release] {
		if k.release != "" {
			if err := aptSources(cache, k.release); err != nil {
				t.Fatalf("%s: %v", k.id(), err)
			}
		}
		// Its status is not looked at: it is 100 when an index is missing,
		// as debian-security's are for some architectures; whether the
		// packages are found is what counts.
		aptLog[k.release], _ = aptRun(cache, k.release, cache, "apt-get", "update")
		aptUpdated[k.release] = true
	}
	meta := "linux-image-" + k.flavour + ":" + k.name
	show, err := aptRun(cache, k.release, cache, "apt-cache", "show", "--no-all-versions", meta)
	if err != nil {
		t.Fatalf("%s: apt-cache show %s: %v\n%s\napt-get update said:\n%s", k.id(), meta, err, show, aptLog[k.release])
	}
	// The meta-package depends on the versioned image (the first name of
	// Depends).
	m := regexp.MustCompile(`(?m)^Depends: (linux-image-[^ ,]+) \(= ([^)]+)\)`).FindStringSubmatch(show)
	if m == nil {
		t.Fatalf("%s: no linux-image dependency in apt-cache show %s:\n%s", k.id(), meta, show)
	}
	tmp, err := os.MkdirTemp(cache, "."+k.id()+".tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if out, err := aptRun(cache, k.release, tmp, "apt-get", "download", m[1]+":"+k.name+"="+m[2], "busybox-static:"+k.name); err != nil {
		t.Fatalf("%s: apt-get download: %v\n%s", k.id(), err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	var got []string
	for _, deb := range debs {
		fields, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version").Output()
		if err != nil {
			t.Fatalf("%s: dpkg-deb -f %s: %v", k.id(), deb, err)
		}
		f := strings.Fields(string(fields)) // Package: NAME Version: VERSION
		if len(f) != 4 {
			t.Fatalf("%s: dpkg-deb -f %s: %q", k.id(), deb, fields)
		}
		got = append(got, f[1]+" "+f[3])
		if err := extractDeb(deb, tmp, map[string]string{
			"./boot/" + k.image + "-": k.image,
			"./boot/config-":          "config",
			"./bin/busybox":           "busybox",
			"./usr/bin/busybox":       "busybox", // trixie's, merged /usr
		}); err != nil {
			t.Fatalf("%s: %s: %v", k.id(), deb, err)
		}
	}
	sort.Strings(got)
	versions = strings.Join(got, ", ")
	for _, f := range []string{k.image, "config", "busybox"} {
		if _, err := os.Stat(filepath.Join(tmp, f)); err != nil {
			t.Fatalf("%s: %s is in none of %v", k.id(), f, got)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "versions"), []byte(versions+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, deb := range debs {
		os.Remove(deb)
	}
	os.RemoveAll(dir) // an older cache's
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return kernel, busybox, versions + " (downloaded to " + dir + ")"
}

// extractDeb writes the files of deb's data whose names start with a key
// of want to dir, named by its value.
func extractDeb(deb, dir string, want map[string]string) error {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	data, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	tr := tar.NewReader(data)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for prefix, name := range want {
			if h.Typeflag == tar.TypeReg && strings.HasPrefix(h.Name, prefix) {
				f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
				if err != nil {
					return err
				}
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
			}
		}
	}
}

// cpio writes an initramfs: the "newc" format the kernel unpacks.
type cpio struct {
	bytes.Buffer
	ino int
}

func (c *cpio) entry(name string, mode uint32, rdev [2]int, data []byte) {
	c.ino++
	fmt.Fprintf(&c.Buffer, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name)+1, 0)
	c.WriteString(name + "\x00")
	c.pad()
	c.Write(data)
	c.pad()
}

func (c *cpio) pad() {
	for c.Len()%4 != 0 {
		c.WriteByte(0)
	}
}

func (c *cpio) dir(name string)                      { c.entry(name, syscall.S_IFDIR|0o755, [2]int{}, nil) }
func (c *cpio) file(name string, m uint32, d []byte) { c.entry(name, syscall.S_IFREG|m, [2]int{}, d) }

// guestInit is the guest's /init: a machine for the suite, the suite, its
// status, power-off. The kernel opens /dev/console (in the archive, for
// the kernel's first open, before devtmpfs is mounted) as its stdio.
const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin HOME=/root TMPDIR=/tmp
# The suite allows for emulation where it counts CPU time.
export BUS_TEST_EMULATED=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
echo "` + guestMark + ` uname -m $(uname -m)"
echo "` + guestMark + ` uname -r $(uname -r)"
echo "` + guestMark + ` cpus $(grep -c ^processor /proc/cpuinfo)"
cd /bus
# The results again once the suite has ended, on an idle console: a busy
# one mangled a result line now and then (mips64el, 2 runs in 10).
{ ./bus.test -test.short -test.v -test.count=1 -test.run "$(cat run)" -test.skip "$(cat skip)" -test.timeout "$(cat timeout)" 2>&1; echo $? >/tmp/status; } | tee /tmp/out
echo "` + guestMark + ` exit $(cat /tmp/status)"
echo "` + guestMark + ` results"
grep -E '^--- (PASS|FAIL|SKIP): ' /tmp/out
sync
poweroff -f
`

// guestPasswd and guestGroup name the ids the suite runs children as
// (root, nobody, uid 2, gid 1), as Debian's base-passwd does.
const (
	guestPasswd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	guestGroup = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nnogroup:x:65534:\n"
)

// initramfs writes the guest's initramfs to path.
func initramfs(path string, busybox, testBin []byte, run, skip string, timeout time.Duration) error {
	var c cpio
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "etc", "root", "bus"} {
		c.dir(d)
	}
	c.entry("dev/console", syscall.S_IFCHR|0o600, [2]int{5, 1}, nil)
	c.file("init", 0o755, []byte(guestInit))
	c.file("bin/busybox", 0o755, busybox)
	c.file("etc/passwd", 0o644, []byte(guestPasswd))
	c.file("etc/group", 0o644, []byte(guestGroup))
	c.file("bus/bus.test", 0o755, testBin)
	c.file("bus/run", 0o644, []byte(run))
	c.file("bus/skip", 0o644, []byte(skip))
	c.file("bus/timeout", 0o644, []byte(timeout.String()))
	// What tests read of the repository (TestManPageCoversHelp, TestReadme).
	for _, name := range []string{"bus.1", "bus.5", "README", "proto.go"} {
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		c.file("bus/"+name, 0o644, data)
	}
	// The fuzz targets' seeds, which the suite runs as tests.
	c.dir("bus/testdata")
	err := filepath.WalkDir(filepath.Join("testdata", "fuzz"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			c.dir("bus/" + p)
			return nil
		}
		data, err := os.ReadFile(p)
		c.file("bus/"+p, 0o644, data)
		return err
	})
	if err != nil {
		return err
	}
	c.entry("TRAILER!!!", 0, [2]int{}, nil)
	return os.WriteFile(path, c.Bytes(), 0o644)
}

// guestTally is what the results block that the guest prints at the end
// says, and the live output for a test whose line the console mangled
// there.
func guestTally(text string) innerTally {
	live, block, ok := strings.Cut(text, guestMark+" results\n")
	if !ok {
		return tallyInner(text, 5)
	}
	r, l := tallyInner(block, 5), tallyInner(live, 0)
	r.negative = append(r.negative, l.negative...)
	seen := map[string]bool{}
	for _, name := range slices.Concat(r.passed, r.failed, r.skipped) {
		seen[name] = true
	}
	add := func(to *[]string, names []string) {
		for _, name := range names {
			if !seen[name] {
				seen[name] = true
				*to = append(*to, name)
			}
		}
	}
	add(&r.failed, l.failed)
	add(&r.passed, l.passed)
	add(&r.skipped, l.skipped)
	return r
}

// guestLineRE matches what the guest's /init says of itself.
// (anywhere in a line: a late kernel message may come before it).
var guestLineRE = lazyRE(`(?m)` + guestMark + ` (uname -m|uname -r|cpus|exit) (.*)$`)

// kernelConfig says what bus needs of a kernel's configuration, and fails
// t where System V IPC is missing: CONFIG_SYSVIPC, and the 32-bit time
// calls (CONFIG_COMPAT_32BIT_TIME) that a 32-bit bus falls back to where
// semtimedop_time64 is missing.
func kernelConfig(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, opt := range []string{"CONFIG_SYSVIPC", "CONFIG_COMPAT_32BIT_TIME"} {
		m := regexp.MustCompile(`(?m)^` + opt + `=(.*)$`).FindStringSubmatch(string(data))
		v := "not set"
		if m != nil {
			v = m[1]
		}
		said = append(said, opt+" "+v)
		if opt == "CONFIG_SYSVIPC" && v != "y" {
			t.Fatalf("%s: %s is %s: no System V IPC", path, opt, v)
		}
	}
	return strings.Join(said, ", ")
}

// runKernel boots k with the suite (spanTests for the span's guests) and
// checks what it ran.
func runKernel(t *testing.T, k kernelTarget, cache, dir string, suite []string) {
	t0 := time.Now()
	kernel, busyboxPath, versions := fetchKernel(t, k, cache)
	fetched := time.Since(t0)

	t1 := time.Now()
	bin := filepath.Join(dir, "bus.test."+k.id())
	a := archTarget{name: k.id(), goarch: k.goarch, env: k.env}
	if err := goTool(a, archBuildLimit, "test", "-c", "-o", bin, "."); err != "" {
		t.Fatal(err)
	}
	built := time.Since(t1)
	testBin, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	notRun := maps.Clone(notInGuests)
	maps.Copy(notRun, k.notHere)
	var na []string
	for name := range notRun {
		na = append(na, name)
	}
	sort.Strings(na)
	skip := innerSkip
	if len(na) > 0 {
		skip += "|^(" + strings.Join(na, "|") + ")$"
	}
	initrd := filepath.Join(dir, "initrd."+k.id())
	// The suite's own bound, inside the guest, leaves a minute for the
	// boot and the power-off.
	run := "."
	if k.span {
		for _, name := range spanTests {
			if !slices.Contains(suite, name) {
				t.Fatalf("%s: spanTests names %s, which is not a test of the suite", k.id(), name)
			}
		}
		suite = spanTests
		run = "^(" + strings.Join(spanTests, "|") + ")$"
	}
	if err := initramfs(initrd, busybox, testBin, run, skip, kernelRunLimit-time.Minute); err != nil {
		t.Fatal(err)
	}

	// One CPU: a second costs more of the host's CPU than it saves (TCG;
	// TestBurst alone took 1m19s of CPU with one, 2m2s with two, armhf).
	argv := append(slices.Clone(k.qemu), "-m", k.mem, "-smp", "1", "-nodefaults", "-display", "none", "-serial", "stdio",
		"-no-reboot", "-kernel", kernel, "-initrd", initrd,
		"-append", "console="+k.console+" loglevel=3 oops=panic panic=-1 rdinit=/init")
	ctx, cancel := context.WithTimeout(context.Background(), kernelRunLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	text, ran, runErr := runLogged(t, cmd, filepath.Join(dir, "console."+k.id()+".txt"))
	text = strings.ReplaceAll(text, "\r\n", "\n") // the serial line's CRLF
	var cpu time.Duration                         // the guest's real cost: wall time varies with the host's load
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}

	said := map[string]string{}
	for _, m := range guestLineRE().FindAllStringSubmatch(text, -1) {
		said[m[1]] = strings.TrimSpace(m[2])
	}
	r := guestTally(text)
	passed, failed, skipped, slowest := r.passed, r.failed, r.skipped, r.slowest
	t.Logf("%s: %s", k.id(), versions)
	t.Logf("%s: the kernel's configuration: %s", k.id(), kernelConfig(t, filepath.Join(filepath.Dir(kernel), "config")))
	t.Logf("%s (%s): uname -m %s, uname -r %s, %s CPUs; fetch %v, build %v, boot and run %v (qemu's CPU time %v): %d passed, %d failed, %d skipped of the %d tests of the qemu-user runs; slowest: %s",
		k.id(), strings.Join(k.qemu, " "), said["uname -m"], said["uname -r"], said["cpus"],
		fetched.Round(100*time.Millisecond), built.Round(100*time.Millisecond), ran.Round(100*time.Millisecond), cpu.Round(100*time.Millisecond),
		len(passed), len(failed), len(skipped), len(suite), strings.Join(slowest, ", "))

	for _, name := range na {
		t.Logf("%s: not run in a guest: %s: %s", k.id(), name, notRun[name])
	}
	if len(r.negative) > 0 {
		// Seen in malta guests after the emulated CPU stood still for
		// seconds (see kernelTargets); a test's result is its PASS or
		// FAIL and the suite's status.
		t.Logf("%s: the guest's clock went back during %s (negative durations)", k.id(), strings.Join(slices.Compact(slices.Sorted(slices.Values(r.negative))), ", "))
	}

	status, haveStatus := said["exit"]
	switch {
	case strings.Contains(text, "Kernel panic"):
		i := strings.Index(text, "Kernel panic")
		t.Fatalf("%s: the kernel panicked:\n%s", k.id(), text[max(0, i-2000):min(len(text), i+2000)])
	case ctx.Err() != nil:
		t.Fatalf("%s: no result after %v: killed; its console:\n%s", k.id(), kernelRunLimit, innerExcerpt(text))
	case runErr != nil:
		t.Fatalf("%s: %s: %v; its console:\n%s", k.id(), argv[0], runErr, innerExcerpt(text))
	case !haveStatus:
		t.Fatalf("%s: the guest powered off without the suite's exit status; its console:\n%s", k.id(), innerExcerpt(text))
	case said["uname -m"] != k.machine:
		t.Fatalf("%s: the guest is %q (uname -m), want %q", k.id(), said["uname -m"], k.machine)
	case status != "0" || len(failed) > 0:
		t.Fatalf("%s: the suite exited %s; what failed:\n%s", k.id(), status, innerExcerpt(text))
	case len(skipped) > 0:
		t.Fatalf("%s: tests skipped in the guest (every one must run): %v", k.id(), skipped)
	}
	var missing []string
	for _, name := range suite {
		if _, na := notRun[name]; !na && !slices.Contains(passed, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		var why []string
		for _, name := range missing {
			why = append(why, runExcerpt(text, name))
		}
		t.Fatalf("%s: tests of the qemu-user runs that did not pass in the guest: %v; what they printed:\n%s", k.id(), missing, strings.Join(why, "\n"))
	}
	if 10*len(passed) < 9*len(suite) {
		t.Fatalf("%s: %d of the %d tests of the qemu-user runs ran: fewer than 90%%", k.id(), len(passed), len(suite))
	}
}

// TestGuestTally: a result line that the console mangled in one of the
// guest's two copies (live, and the block at the end) is read from the
// other; a failure in either counts.
func TestGuestTally(t *testing.T) {
	text := "--- PASS: TestA (1.00s)\n--- PA\x00SS: TestB (2.00s)\n--- FAIL: TestC (0.10s)\n" +
		guestMark + " exit 1\n" + guestMark + " results\n" +
		"--- PASS: TestA (1.00s)\n--- PASS: TestB (2.00s)\n--- PASS: Tes<junk>tC (0.10s)\n"
	r := guestTally(text)
	if !slices.Equal(r.passed, []string{"TestA", "TestB"}) || !slices.Equal(r.failed, []string{"TestC"}) || len(r.skipped) > 0 {
		t.Fatalf("passed %v, failed %v, skipped %v; want [TestA TestB], [TestC], []", r.passed, r.failed, r.skipped)
	}
	if r := guestTally("--- PASS: TestA (1.00s)\n"); !slices.Equal(r.passed, []string{"TestA"}) {
		t.Fatalf("without a results block: passed %v, want [TestA]", r.passed)
	}
	// A malta guest's clock can go back during a test.
	if r := guestTally("--- PASS: TestA (-4.55s)\n"); !slices.Equal(r.passed, []string{"TestA"}) || !slices.Equal(r.negative, []string{"TestA -4.55s"}) {
		t.Fatalf("a negative duration: passed %v, negative %v; want [TestA], [TestA -4.55s]", r.passed, r.negative)
	}
}
