package main

// The bus file's trust (bus(1), SECURITY): a file that another user wrote,
// linked or may write is refused by every subcommand, as root too, with
// the real bus's objects, modes and owners unchanged and nothing sent
// through it; the usual paths still work (a bus given away with `bus
// chown`, a user's bus used and removed by root, a bus made as libbus
// makes it); a stale bus is repaired only by its owner or root, and never
// by removing another user's half; objects given away by IPC_SET alone.
// The other user is nobody (65534), in the suite's own IPC namespace.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var otherUser = &syscall.Credential{Uid: 65534, Gid: 65534}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run children as another user")
	}
}

// folder makes a folder of the test's with mode (the sticky bit too).
func folder(t *testing.T, name string, mode uint32) string {
	t.Helper()
	dir := filepath.Join(xdgDir(t), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shAs runs `sh -c script` as cred, bounded, and fails t unless it exits 0.
func shAs(t *testing.T, cred *syscall.Credential, script string, args ...string) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if r := runCmd(t, cmd, ""); r.code != 0 {
		t.Fatalf("as uid %d: sh -c %q: status %d: %s", cred.Uid, script, r.code, r.stderr)
	}
}

// busSnapshot is what no refused subcommand may change: the file's owner,
// mode and keys, and each object's id, owner, group and mode.
func busSnapshot(t *testing.T, path string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	sem, shm, err := parseKeys(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p1, ok1 := procObject(true, sem)
	p2, ok2 := procObject(false, shm)
	if !ok1 || !ok2 {
		t.Fatalf("%s: objects gone: semaphores %v, shared memory %v", path, ok1, ok2)
	}
	return fmt.Sprintf("file %d:%d %o %q; sem id %d %d:%d %o; shm id %d %d:%d %o", st.Uid, st.Gid, st.Mode, data,
		p1.id, p1.uid, p1.gid, p1.perms, p2.id, p2.uid, p2.gid, p2.perms)
}

// everySubcommand is each subcommand that acts through a bus file, on path.
func everySubcommand(path string) [][]string {
	return [][]string{
		{"remove", path}, {"chmod", "666", path}, {"chown", "65534", path}, {"chgrp", "65534", path},
		{"listen", "-t", "1s", path}, {"wait", "-t", "1s", path},
		{"broadcast", path, "1 through the forged file"}, {"info", path}, {"create", path},
	}
}

func TestForgedBusFile(t *testing.T) {
	needRoot(t)
	real := filepath.Join(folder(t, "private", 0o700), "bus")
	if _, err := Create(real, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeQuietly(real) })
	keys, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	l := startListener(t, nil, "listen", real)
	shared := folder(t, "shared", 0o1777)

	// What another user can do where anyone may write: a file of theirs
	// with root's keys, read off /proc/sysvipc; a symbolic link of theirs
	// to root's file. Root's file under a second name, as another user can
	// make it where fs.protected_hardlinks is 0 (the kernel's default), and
	// root's file left writable by others, are made here by root.
	forged := filepath.Join(shared, "forged")
	shAs(t, otherUser, `printf '%s' "$1" > "$2"`, string(keys), forged)
	// The link in a folder that is not sticky: in a sticky one, a kernel
	// with fs.protected_symlinks (Debian's) refuses to follow it first
	// (checked below).
	link := filepath.Join(folder(t, "open", 0o777), "link")
	shAs(t, otherUser, `ln -s "$1" "$2"`, real, link)
	stickyLink := filepath.Join(shared, "link")
	shAs(t, otherUser, `ln -s "$1" "$2"`, real, stickyLink)
	hard := filepath.Join(shared, "hard")
	if err := os.Link(real, hard); err != nil {
		t.Fatal(err)
	}
	before := busSnapshot(t, real)

	for _, c := range []struct{ name, path, says string }{
		{"another user's file", forged, "not trusted: the bus file belongs to nobody (uid 65534), its semaphores and shared memory to root (uid 0)"},
		{"another user's symbolic link", link, "not trusted: it is a symbolic link made by nobody (uid 65534) to a bus of root (uid 0)"},
		{"a second name", hard, "not trusted: the bus file has 2 names (hard links)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range everySubcommand(c.path) {
				r := bus(t, "", args...)
				r.expect(t, 1, c.path+": "+c.says)
				if args[0] == "info" && !strings.Contains(r.stdout, "owner") {
					t.Errorf("info printed no owners before refusing: %q", r.stdout)
				}
				if now := busSnapshot(t, real); now != before {
					t.Fatalf("bus %s changed it:\nbefore %s\nafter  %s", strings.Join(args, " "), before, now)
				}
				if _, err := os.Lstat(c.path); err != nil {
					t.Fatalf("bus %s: the path is gone: %v", strings.Join(args, " "), err)
				}
			}
		})
	}
	// In the sticky folder: refused by the kernel, where it protects
	// symbolic links, or by bus.
	for _, args := range everySubcommand(stickyLink) {
		r := bus(t, "", args...)
		if r.code != 1 || !strings.Contains(r.stderr, stickyLink+": not trusted: it is a symbolic link made by nobody (uid 65534)") {
			t.Fatalf("bus %s through another user's link in a sticky folder: status %d, %q", strings.Join(args, " "), r.code, r.stderr)
		}
		if now := busSnapshot(t, real); now != before {
			t.Fatalf("bus %s changed it:\nbefore %s\nafter  %s", strings.Join(args, " "), before, now)
		}
	}

	// The second name makes the bus's own name refused too (which of the
	// two is the owner's, bus cannot tell); removing it gives the bus back.
	bus(t, "", "broadcast", real, "x").expect(t, 1, "not trusted: the bus file has 2 names")
	os.Remove(hard)

	// Writable by others than its owner: anyone could rewrite the keys.
	os.Chmod(real, 0o620)
	bus(t, "", "broadcast", real, "x").expect(t, 1, real+": not trusted: the bus file is writable by others than its owner (mode rw--w----)")
	os.Chmod(real, 0o600)

	// Nothing reached the listener: the first line it prints is this one.
	bus(t, "", "broadcast", real, "2 after").expect(t, 0, "")
	if got := l.next(); got != "2 after" {
		t.Fatalf("the listener on the real bus got %q first, want %q", got, "2 after")
	}
}

// A bus another user made, given away with `bus chown`, linked by its owner
// or made as libbus makes it, is used and removed as before.
func TestTrustedBuses(t *testing.T) {
	needRoot(t)
	shared := folder(t, "shared", 0o1777)

	t.Run("given away with bus chown, removed by its new owner", func(t *testing.T) {
		path := filepath.Join(shared, "given")
		bus(t, "", "create", path).expect(t, 0, "")
		t.Cleanup(func() { removeQuietly(path) })
		bus(t, "", "chown", "65534:65534", path).expect(t, 0, "")
		l := startListener(t, otherUser, "listen", path)
		bus(t, "", "broadcast", path, "1 to nobody's bus").expect(t, 0, "")
		if got := l.next(); got != "1 to nobody's bus" {
			t.Fatalf("got %q", got)
		}
		l.kill()
		sem, shm, _, _ := readBusFile(path)
		runAs(t, otherUser, "remove", path).expect(t, 0, "")
		checkGone(t, sem, shm)
	})

	t.Run("a user's bus, through the user's link, used and removed by root", func(t *testing.T) {
		path := filepath.Join(shared, "theirs")
		runAs(t, otherUser, "create", path).expect(t, 0, "")
		t.Cleanup(func() { removeQuietly(path) })
		// Not in the sticky folder, where fs.protected_symlinks would
		// have the kernel refuse root to follow it.
		link := filepath.Join(folder(t, "open", 0o777), "theirs-link")
		shAs(t, otherUser, `ln -s "$1" "$2"`, path, link)
		l := startListener(t, nil, "listen", link)
		runAs(t, otherUser, "broadcast", path, "2 from nobody").expect(t, 0, "")
		if got := l.next(); got != "2 from nobody" {
			t.Fatalf("got %q", got)
		}
		l.kill()
		bus(t, "", "info", link).expect(t, 0, "")
		sem, shm, _, _ := readBusFile(path)
		bus(t, "", "remove", path).expect(t, 0, "")
		checkGone(t, sem, shm)
	})
}

// A bus made as libbus's bus_create makes it (the yardstick's create, in
// C, as another user) passes the check: used by root and by its owner,
// removed by its owner.
func TestLibbusMadeBus(t *testing.T) {
	needRoot(t)
	shared := folder(t, "shared", 0o1777)
	// Built where the other user may run it (a test's TempDir is root's).
	ys := filepath.Join(xdgDir(t), "yardstick")
	if data, err := os.ReadFile(buildYardstick(t)); err != nil || os.WriteFile(ys, data, 0o755) != nil {
		t.Fatalf("copying the yardstick: %v", err)
	}
	path := filepath.Join(shared, "libbus")
	cmd := exec.Command(ys, "create", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: otherUser}
	if r := runCmd(t, cmd, ""); r.code != 0 {
		t.Fatalf("yardstick create: status %d: %s", r.code, r.stderr)
	}
	t.Cleanup(func() { removeQuietly(path) })
	checkOwner(t, path, 65534, 65534)
	l := startListener(t, otherUser, "listen", path)
	bus(t, "", "broadcast", path, "3 on a libbus bus").expect(t, 0, "")
	runAs(t, otherUser, "broadcast", path, "4 by its owner").expect(t, 0, "")
	for _, want := range []string{"3 on a libbus bus", "4 by its owner"} {
		if got := l.next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	l.kill()
	sem, shm, _, _ := readBusFile(path)
	runAs(t, otherUser, "remove", path).expect(t, 0, "")
	checkGone(t, sem, shm)
}

func TestStaleRepairTrust(t *testing.T) {
	needRoot(t)
	dir := folder(t, "open", 0o777) // anyone may add and replace files
	path := filepath.Join(dir, "stale")
	runAs(t, otherUser, "create", path).expect(t, 0, "")
	t.Cleanup(func() { removeQuietly(path) })
	runAs(t, otherUser, "chmod", "+o", path).expect(t, 0, "") // others may read it
	sem, _, _, _ := readBusFile(path)
	id, _ := semget(sem, nsems, 0)
	semctl(id, 0, ipcRmid, 0) // a reboot's doing, half of it

	// Another user (not root) may not take it over.
	third := &syscall.Credential{Uid: 2, Gid: 2}
	before, _ := os.ReadFile(path)
	runAs(t, third, "create", path).expect(t, 1, path+": stale bus of nobody (uid 65534) (its semaphores are gone): only its owner or root may make it anew")
	if now, _ := os.ReadFile(path); string(now) != string(before) {
		t.Fatalf("the refused repair changed the file: %q, then %q", before, now)
	}
	// Root's repair keeps it the owner's: the pair passes the check.
	bus(t, "", "create", path).expect(t, 0, "")
	checkOwner(t, path, 65534, 65534)
	runAs(t, otherUser, "info", path).expect(t, 0, "")

	// A forged stale file: a key of nothing and root's segment. Root's
	// create must not "repair" it by removing root's segment.
	real := filepath.Join(folder(t, "private", 0o700), "bus")
	if _, err := Create(real, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeQuietly(real) })
	_, shm, _, _ := readBusFile(real)
	gone, err := randomKey()
	for err == nil {
		if _, e := semget(gone, 0, 0); e == syscall.ENOENT {
			break
		}
		gone, err = randomKey()
	}
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(dir, "forged")
	shAs(t, otherUser, `printf '%s\n%s\n' "$1" "$2" > "$3"`, fmt.Sprint(gone), fmt.Sprint(shm), forged)
	snap := busSnapshot(t, real)
	for _, args := range [][]string{{"create", forged}, {"remove", forged}} {
		bus(t, "", args...).expect(t, 1, forged+": not trusted: the bus file belongs to nobody (uid 65534), its shared memory to root (uid 0)")
		if now := busSnapshot(t, real); now != snap {
			t.Fatalf("bus %s changed root's bus:\nbefore %s\nafter  %s", args[0], snap, now)
		}
	}
}

// Objects given to another user by IPC_SET alone (ipcs, a program's
// semctl) no longer match their file: refused, and info says so, until
// the file follows (chown(1)), when all three agree again.
func TestObjectsGivenAwayAlone(t *testing.T) {
	needRoot(t)
	path := newBus(t)
	sem, shm, _, _ := readBusFile(path)
	semid, _ := semget(sem, nsems, 0)
	var b ipcBuf
	if e := semctlBuf(semid, ipcStat, &b); e != 0 {
		t.Fatal(e)
	}
	b.setOwner(65534, 65534)
	if e := semctlBuf(semid, ipcSet, &b); e != 0 {
		t.Fatal(e)
	}
	want := path + ": not trusted: the bus file belongs to root (uid 0), its semaphores to nobody (uid 65534)"
	bus(t, "", "listen", "-t", "1s", path).expect(t, 1, want)
	r := bus(t, "", "info", path)
	r.expect(t, 1, want)
	if !strings.Contains(r.stdout, "owner nobody (uid 65534)") {
		t.Errorf("info does not show the semaphores' owner: %q", r.stdout)
	}
	shmid, _ := shmget(shm, shmSize, 0)
	if e := shmctl(shmid, ipcStat, &b); e != 0 {
		t.Fatal(e)
	}
	b.setOwner(65534, 65534)
	if e := shmctl(shmid, ipcSet, &b); e != 0 {
		t.Fatal(e)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	bus(t, "", "info", path).expect(t, 0, "")
}

// A create links its file into place from a temporary name, removed right
// after: an open in between sees two names, and waits for the second to
// go rather than refuse. Any other second name is refused at once.
func TestSecondNameOfACreate(t *testing.T) {
	path := newBus(t)
	dir, base := filepath.Split(path)
	tmp := filepath.Join(dir, "."+base+".tmpAbCd0123")
	if err := os.Link(path, tmp); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	syscall.Stat(path, &st)
	other := filepath.Join(dir, "other")
	os.Link(path, other)
	if !tempName(path, &st) {
		t.Fatalf("tempName does not see %s", tmp)
	}
	os.Remove(tmp)
	if tempName(path, &st) {
		t.Fatalf("tempName sees a temporary name where there is only %s", other)
	}
	if _, _, err := findBus(path); err == nil || !strings.Contains(err.Error(), "not trusted: the bus file has 2 names") {
		t.Fatalf("a second name that is not a create's: %v", err)
	}
	os.Remove(other)

	os.Link(path, tmp)
	done := make(chan error, 1)
	go func() {
		_, f, err := findBus(path)
		if err == nil {
			f.close()
		}
		done <- err
	}()
	os.Remove(tmp) // before the open, or while it waits: the same result
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("open during a create: %v", err)
		}
	case <-time.After(patience):
		t.Fatalf("open during a create still waiting after %v", patience)
	}
}
