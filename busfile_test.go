package main

// The bus file and its objects: create (random, at a path, never over
// another file, through symlinks), remove, stale buses and their repair, the
// wire format as another program reads it, hand-made buses, bad bus files,
// permissions and ownership (chmod, chown, chgrp, as root and not), info,
// and the file helpers behind them.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestCreateRandomPathAndRemove(t *testing.T) {
	r := bus(t, "", "create")
	r.expect(t, 0, "")
	path := strings.TrimSpace(r.stdout)
	dir := filepath.Join(xdgDir(t), "bus")
	if filepath.Dir(path) != dir || !strings.HasPrefix(filepath.Base(path), "random.") {
		t.Fatalf("path %q is not in %s", path, dir)
	}
	name := strings.TrimPrefix(filepath.Base(path), "random.")
	if len(name) != 30 || strings.Trim(name, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		t.Fatalf("random name %q is not 30 of [0-9a-zA-Z]", name)
	}
	t.Cleanup(func() { removeQuietly(path) })
	checkWireFormat(t, path)

	r = bus(t, "", "remove", path)
	r.expect(t, 0, "")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("bus file still there: %v", err)
	}
	data, _ := os.ReadFile(path)
	_ = data
}

// checkWireFormat checks a bus against the format (bus(5): the bus file and
// its objects), reading it
// as another program would: the file, then the objects by key.
func checkWireFormat(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("bus file %q is not two lines", data)
	}
	var keys [2]int64
	for i := range keys {
		keys[i], err = strconv.ParseInt(lines[i], 10, 64)
		if err != nil || keys[i] < 1 || keys[i] > 1<<30-1 || strconv.FormatInt(keys[i], 10) != lines[i] {
			t.Fatalf("line %d %q is not a decimal key in range", i+1, lines[i])
		}
	}
	sem := checkObject(t, "sem", lines[0], "5")
	for i, want := range []int{0, 0, 1, 0, 0} {
		if v, e := semctl(int(sem.id), i, semGetval, 0); e != 0 || v != want {
			t.Errorf("semaphore %d = %d (%v), want %d", i, v, e, want)
		}
	}
	checkObject(t, "shm", lines[1], "2048")
}

// checkObject checks, from /proc/sysvipc/KIND, that the object of key
// exists with mode 600 and the size (nsems or bytes) in column 4.
func checkObject(t *testing.T, kind, key, size string) procEntry {
	t.Helper()
	k, _ := strconv.ParseInt(key, 10, 32)
	o, ok := procObject(kind == "sem", int32(k))
	if !ok {
		t.Fatalf("no %s object of key %s", kind, key)
	}
	if o.perms&0o777 != 0o600 {
		t.Errorf("%s mode %o, want 600", kind, o.perms)
	}
	data, _ := os.ReadFile("/proc/sysvipc/" + kind)
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[0] == key && f[3] != size {
			t.Errorf("%s size %s, want %s", kind, f[3], size)
		}
	}
	return o
}

func TestCreateAtPath(t *testing.T) {
	path := filepath.Join(xdgDir(t), "b")
	t.Cleanup(func() { removeQuietly(path) })
	bus(t, "", "create", path).expect(t, 0, "")
	checkWireFormat(t, path)
	before, _ := os.ReadFile(path)
	bus(t, "", "create", path).expect(t, 0, "")
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("create on an existing bus changed it")
	}
	bus(t, "", "create", "-x", path).expect(t, 1, path+": already exists")
	bus(t, "", "-x", "create", path).expect(t, 1, "already exists")
}

func TestCreateNeverOverwrites(t *testing.T) {
	path := filepath.Join(xdgDir(t), "notes")
	os.WriteFile(path, []byte("my notes\n"), 0o644)
	objs, _ := sysvObjects()
	bus(t, "", "create", path).expect(t, 1, path+": not a bus file (line 1 is not a decimal key)")
	if data, _ := os.ReadFile(path); string(data) != "my notes\n" {
		t.Fatalf("file changed: %q", data)
	}
	bus(t, "", "create", filepath.Join(xdgDir(t), "no/such/dir/b")).expect(t, 1, "its folder "+filepath.Join(xdgDir(t), "no/such/dir")+" does not exist")
	if now, _ := sysvObjects(); !slices.Equal(objs, now) {
		t.Fatalf("a failed create left objects: %v -> %v", objs, now)
	}
}

func TestStaleBus(t *testing.T) {
	path := newBus(t)
	sem, shm, _, _ := readBusFile(path)
	removeObjects(sem, shm)
	bus(t, "", "broadcast", path, "x").expect(t, 1, "stale bus")
	bus(t, "", "listen", path).expect(t, 1, "stale bus")
	bus(t, "", "info", path).expect(t, 1, "stale bus")
	// create repairs it in place, keeping the file's mode.
	os.Chmod(path, 0o640)
	bus(t, "", "create", path).expect(t, 0, "")
	sem2, shm2, _, err := readBusFile(path)
	if err != nil || sem2 == sem || shm2 == shm {
		t.Fatalf("not repaired: %v %d %d", err, sem2, shm2)
	}
	if o, ok := procObject(true, sem2); !ok || o.perms&0o777 != 0o660 {
		t.Fatalf("repaired semaphores mode %o, want 660 from the file's 640", o.perms)
	}
	l := startListener(t, nil, "wait", path)
	bus(t, "", "broadcast", path, "0 repaired").expect(t, 0, "")
	if got := l.next(); got != "0 repaired" {
		t.Fatalf("got %q", got)
	}
	// remove removes a stale bus's file, with a note.
	sem, shm, _, _ = readBusFile(path)
	removeObjects(sem, shm)
	bus(t, "", "remove", path).expect(t, 0, "stale")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("stale bus file not removed")
	}
	bus(t, "", "remove", path).expect(t, 1, path+": no such bus file")
}

// TestHandMadeBus: a bus made by another program following the format of
// bus(5) (key file written by hand, objects made with raw calls) works.
func TestHandMadeBus(t *testing.T) {
	semid, e := semget(0x2a2a2a2, 5, ipcCreat|ipcExcl|0o600)
	if e != 0 {
		t.Fatal(e)
	}
	shmid, e := shmget(0x2a2a2a3, 2048, ipcCreat|ipcExcl|0o600)
	if e != 0 {
		semctl(semid, 0, ipcRmid, 0)
		t.Fatal(e)
	}
	t.Cleanup(func() { semctl(semid, 0, ipcRmid, 0); shmctl(shmid, ipcRmid, nil) })
	if _, e := semctl(semid, semX, semSetval, 1); e != 0 {
		t.Fatal(e)
	}
	path := filepath.Join(xdgDir(t), "handmade")
	os.WriteFile(path, []byte(fmt.Sprintf("%d\n%d\n", 0x2a2a2a2, 0x2a2a2a3)), 0o600)
	l := startListener(t, nil, "listen", path)
	bus(t, "", "broadcast", path, "7 hand made").expect(t, 0, "")
	if got := l.next(); got != "7 hand made" {
		t.Fatalf("got %q", got)
	}
	// The message is NUL-terminated at offset 0, as the C tool writes it.
	mem, e := shmat(shmid, shmRdonly, 2048)
	if e != 0 {
		t.Fatal(e)
	}
	defer shmdt(mem)
	if !bytes.HasPrefix(mem, []byte("7 hand made\x00")) {
		t.Fatalf("segment holds %q", mem[:16])
	}
	l.kill()
	bus(t, "", "remove", path).expect(t, 0, "")
	if _, ok := procObject(true, 0x2a2a2a2); ok {
		t.Fatal("remove left the semaphores")
	}
}

func TestBadBusFiles(t *testing.T) {
	dir := xdgDir(t)
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o600)
		return p
	}
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600)
	os.Symlink("loop2", filepath.Join(dir, "loop1"))
	os.Symlink("loop1", filepath.Join(dir, "loop2"))
	cases := []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "no such bus file"},
		{filepath.Join(dir, "adir"), "is a directory, not a bus file"},
		{filepath.Join(dir, "fifo"), "not a bus file (not a regular file)"},
		{filepath.Join(dir, "loop1"), "too many levels of symbolic links"},
		{write("empty", ""), "not a bus file (empty)"},
		{write("one", "12\n"), "not a bus file (only one line)"},
		{write("words", "twelve\n13\n"), "not a bus file (line 1 is not a decimal key"},
		{write("neg", "-12\n13\n"), "not a bus file (line 1 is out of range"},
		{write("big", "12\n1073741824\n"), "not a bus file (line 2 is out of range"},
		{write("three", "12\n13\n14\n"), "not a bus file (more than two lines"},
		{write("nonl", "12\n13"), "not a bus file (line 2 is not ended by a newline"},
		{write("junk", "\x00\x01\x02\n\xff\n"), "not a bus file (line 1 is not a decimal key"},
	}
	for _, c := range cases {
		for _, args := range [][]string{{"broadcast", c.path, "x"}, {"listen", c.path}, {"remove", c.path}} {
			bus(t, "", args...).expect(t, 1, c.path+": "+c.want)
		}
	}
	gone := write("gone", "1000001\n1000002\n")
	for _, args := range [][]string{{"broadcast", gone, "x"}, {"listen", gone}, {"chmod", "u", gone}, {"info", gone}} {
		bus(t, "", args...).expect(t, 1, gone+": stale bus")
	}
}

func TestRemoveWhileListening(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	bus(t, "", "remove", path).expect(t, 0, "")
	if code := l.exit(); code != 1 {
		t.Fatalf("listener exited %d, want 1", code)
	}
	if !strings.Contains(l.errb.String(), "the bus was removed") {
		t.Fatalf("stderr %q", l.errb.String())
	}
}

// TestRefusedRemoveLeavesTheBus: a remove that is refused, by the folder
// (not writable; sticky, with another user's file) or by the objects (not
// the user's, or one of them not), destroys nothing: the file and both
// objects stay, and a listener goes on receiving (issue 15).
func TestRefusedRemoveLeavesTheBus(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run children as another user")
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	for _, c := range []struct {
		name    string
		dirMode uint32
		dirUID  int
		prepare func(t *testing.T, path string)
		want    string
		// untrusted: the pair was made by hand (file and objects of two
		// owners), so every subcommand refuses it, root's too.
		untrusted bool
	}{
		{"folder not writable", 0o755, 0, func(t *testing.T, path string) {
			bus(t, "", "chown", "65534:65534", path).expect(t, 0, "")
		}, "permission denied removing the bus file (its folder belongs to root (uid 0), mode rwxr-xr-x)", false},
		{"sticky folder, another user's file", 0o1777, 0, func(t *testing.T, path string) {
			bus(t, "", "chown", "65534:65534", path).expect(t, 0, "")
			os.Chown(path, 0, 0) // the objects theirs, the file root's
			os.Chmod(path, 0o644)
		}, "not trusted: the bus file belongs to root (uid 0), its semaphores and shared memory to nobody (uid 65534)", true},
		{"objects not theirs", 0o755, 65534, func(t *testing.T, path string) {
			bus(t, "", "chmod", "+o", path).expect(t, 0, "")
		}, "permission denied: only the bus's owner or root may change or remove its semaphores (owned by root (uid 0))", false},
		{"the segment not theirs, nor readable", 0o755, 65534, func(t *testing.T, path string) {
			bus(t, "", "chown", "65534:65534", path).expect(t, 0, "")
			_, shm, _, _ := readBusFile(path)
			id, _ := shmget(shm, shmSize, 0)
			var b ipcBuf
			if e := shmctl(id, ipcStat, &b); e != 0 {
				t.Fatal(e)
			}
			b.setOwner(0, 0)
			if e := shmctl(id, ipcSet, &b); e != 0 {
				t.Fatal(e)
			}
		}, "not trusted: the bus file belongs to nobody (uid 65534), its shared memory to root (uid 0)", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(xdgDir(t), "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			syscall.Chmod(dir, c.dirMode) // os.Chmod takes 0o1000 for no sticky bit
			os.Chown(dir, c.dirUID, c.dirUID)
			path := filepath.Join(dir, "bus")
			if _, err := Create(path, true); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { removeQuietly(path) })
			c.prepare(t, path)
			var l *listener
			if !c.untrusted {
				l = startListener(t, nil, "listen", path)
			}
			before := treeState(dir)
			sem, shm, _, _ := readBusFile(path)
			semBefore, _ := procObject(true, sem)
			shmBefore, _ := procObject(false, shm)
			runAs(t, nobody, "remove", path).expect(t, 1, path+": "+c.want)
			if now := treeState(dir); !slices.Equal(before, now) {
				t.Errorf("the folder changed:\nbefore %q\nafter  %q", before, now)
			}
			semNow, ok1 := procObject(true, sem)
			shmNow, ok2 := procObject(false, shm)
			if !ok1 || !ok2 || semNow.id != semBefore.id || shmNow.id != shmBefore.id {
				t.Fatalf("objects gone or changed: semaphores %v %+v, segment %v %+v", ok1, semNow, ok2, shmNow)
			}
			if c.untrusted {
				bus(t, "", "broadcast", path, "0 still here").expect(t, 1, path+": "+c.want)
				return
			}
			bus(t, "", "broadcast", path, "0 still here").expect(t, 0, "")
			if got := l.next(); got != "0 still here" {
				t.Fatalf("got %q", got)
			}
		})
	}
	// Their own bus in a sticky folder: removed, nothing left aside.
	dir := filepath.Join(xdgDir(t), "sticky")
	os.Mkdir(dir, 0o755)
	syscall.Chmod(dir, 0o1777)
	path := filepath.Join(dir, "bus")
	if _, err := Create(path, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeQuietly(path) })
	bus(t, "", "chown", "65534:65534", path).expect(t, 0, "")
	sem, shm, _, _ := readBusFile(path)
	runAs(t, nobody, "remove", path).expect(t, 0, "")
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("left in the folder: %v", names)
	}
	_, ok1 := procObject(true, sem)
	_, ok2 := procObject(false, shm)
	if ok1 || ok2 {
		t.Errorf("objects left: semaphores %v, segment %v", ok1, ok2)
	}
}

func TestChmodChown(t *testing.T) {
	path := newBus(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if os.Getuid() != 0 {
		t.Skip("needs root to run children as another user")
	}
	// Mode u: another user is refused, with the permission and the owner named.
	os.Chmod(path, 0o644) // let them read the keys: the objects still refuse
	r := runAs(t, nobody, "broadcast", path, "x")
	r.expect(t, 1, "permission denied: broadcasting needs read and write permission on the bus's semaphores, owned by root")
	r = runAs(t, nobody, "listen", path)
	r.expect(t, 1, "permission denied")

	bus(t, "", "chmod", "+o", path).expect(t, 0, "")
	checkModes(t, path, 0o604, 0o606)
	l := startListener(t, nobody, "listen", path)
	runAs(t, nobody, "broadcast", path, "1 from nobody").expect(t, 0, "")
	if got := l.next(); got != "1 from nobody" {
		t.Fatalf("got %q", got)
	}
	bus(t, "", "chmod", "g", path).expect(t, 0, "")
	checkModes(t, path, 0o040, 0o060)
	bus(t, "", "chmod", "750", path).expect(t, 0, "")
	checkModes(t, path, 0o640, 0o660)
	bus(t, "", "chmod", "u-g+o", path).expect(t, 0, "")
	checkModes(t, path, 0o604, 0o606)
	// Permissions that look like a flag, as the C tool takes them.
	bus(t, "", "chmod", "-o", path).expect(t, 0, "")
	checkModes(t, path, 0o600, 0o600)
	bus(t, "", "chmod", "-h", path).expect(t, 0, "")
	bus(t, "", "chmod", "+o", path).expect(t, 0, "")
	checkModes(t, path, 0o604, 0o606)

	bus(t, "", "chown", "65534:65534", path).expect(t, 0, "")
	checkOwner(t, path, 65534, 65534)
	bus(t, "", "chgrp", "0", path).expect(t, 0, "")
	checkOwner(t, path, 65534, 0)
	bus(t, "", "chown", "root", path).expect(t, 0, "")
	checkOwner(t, path, 0, 0)
	bus(t, "", "chown", "no-such-user-x", path).expect(t, 1, path+`: no such user "no-such-user-x"`)
	bus(t, "", "chgrp", "no-such-group-x", path).expect(t, 1, `no such group "no-such-group-x"`)
	// Only the owner may change it.
	runAs(t, nobody, "chmod", "666", path).expect(t, 1, "permission denied: only the bus's owner or root")
}

// TestOwnerNotRoot: what the owner of a bus who is not root may do to it.
// A stale bus they repair keeps its group (the new objects get the file's
// owner and group, so the group's members still get in), and a chown or
// chgrp the kernel refuses them changes nothing, objects included.
func TestOwnerNotRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run children as other users")
	}
	dir := filepath.Join(xdgDir(t), "owned")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, 65534, 65534) // they may rewrite their bus file in it
	path := filepath.Join(dir, "bus")
	owner := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{1}}
	member := &syscall.Credential{Uid: 2, Gid: 1}
	runAs(t, owner, "create", path).expect(t, 0, "")
	t.Cleanup(func() { removeQuietly(path) })
	runAs(t, owner, "chgrp", "1", path).expect(t, 0, "")
	runAs(t, owner, "chmod", "ug", path).expect(t, 0, "")

	runAs(t, owner, "chown", "0", path).expect(t, 1, path+": permission denied: only root may give a bus to another user; its owner (")
	runAs(t, owner, "chgrp", "3", path).expect(t, 1, "may give it only to a group they are in")
	checkOwner(t, path, 65534, 1)

	sem, shm, _, err := readBusFile(path)
	if err != nil {
		t.Fatal(err)
	}
	removeObjects(sem, shm) // as a reboot does
	runAs(t, owner, "create", path).expect(t, 0, "")
	checkOwner(t, path, 65534, 1)
	l := startListener(t, member, "listen", path)
	runAs(t, member, "broadcast", path, "0 after the repair").expect(t, 0, "")
	if got := l.next(); got != "0 after the repair" {
		t.Fatalf("got %q", got)
	}
}

func checkModes(t *testing.T, path string, file, objects uint32) {
	t.Helper()
	st, _ := os.Stat(path)
	if uint32(st.Mode().Perm()) != file {
		t.Errorf("file mode %o, want %o", st.Mode().Perm(), file)
	}
	sem, shm, _, _ := readBusFile(path)
	for _, isSem := range []bool{true, false} {
		key := shm
		if isSem {
			key = sem
		}
		if o, _ := procObject(isSem, key); o.perms&0o777 != objects {
			t.Errorf("object mode %o, want %o", o.perms&0o777, objects)
		}
	}
}

func checkOwner(t *testing.T, path string, uid, gid uint32) {
	t.Helper()
	var st syscall.Stat_t
	syscall.Stat(path, &st)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("file owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	sem, shm, _, _ := readBusFile(path)
	for _, isSem := range []bool{true, false} {
		key := shm
		if isSem {
			key = sem
		}
		if o, _ := procObject(isSem, key); o.uid != uid || o.gid != gid {
			t.Errorf("object owner %d:%d, want %d:%d", o.uid, o.gid, uid, gid)
		}
	}
}

func TestInfo(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	l.cmd.Process.Signal(syscall.SIGSTOP)
	defer l.cmd.Process.Signal(syscall.SIGCONT)
	r := bus(t, "", "info", path)
	r.expect(t, 0, "")
	for _, want := range []string{"1 registered", "none in progress", "mode rw-------", strconv.Itoa(l.cmd.Process.Pid), "STOPPED"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
}

// segmentPerms returns the permissions field of the mapping of the segment
// of key shm in /proc/PID/maps ("r--s", "rw-s"), or "" if it is not mapped.
func segmentPerms(t *testing.T, pid string, shm int32) string {
	t.Helper()
	maps, err := os.ReadFile("/proc/" + pid + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/SYSV%08x", uint32(shm))
	for _, line := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[5] == name {
			return f[1]
		}
	}
	return ""
}

// TestListenerAttachesReadOnly: listeners map the segment read-only (a
// listener cannot scribble on the message), writers read-write.
func TestListenerAttachesReadOnly(t *testing.T) {
	path := newBus(t)
	_, shm, _, err := readBusFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"listen", path}, {"wait", path}, {"listen", "-m", "x", path, "true"}} {
		l := startListener(t, nil, args[0], args[1:]...)
		if got := segmentPerms(t, strconv.Itoa(l.cmd.Process.Pid), shm); got != "r--s" {
			t.Errorf("bus %v maps the segment %q, want r--s", args, got)
		}
		l.kill()
	}
	ref := startRefListener(t, path, 0)
	if got := segmentPerms(t, strconv.Itoa(ref.cmd.Process.Pid), shm); got != "r--s" {
		t.Errorf("reference listener maps the segment %q, want r--s", got)
	}
	ref.kill()
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := segmentPerms(t, "self", shm); got != "rw-s" {
		t.Errorf("a writer maps the segment %q, want rw-s", got)
	}
}

// TestCreateThroughSymlinks: `bus create PATH` never writes through a
// symbolic link at PATH. A dangling one is an error that creates nothing
// (not its target, not an object); one to a bus is that bus, left alone;
// one to a stale bus is replaced by a new bus file, the target untouched.
func TestCreateThroughSymlinks(t *testing.T) {
	dir := xdgDir(t)
	outside, err := os.MkdirTemp("", "bustest-outside")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(outside) })
	target := filepath.Join(outside, "target")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	objs, _ := sysvObjects()
	bus(t, "", "create", link).expect(t, 1, link+": a symbolic link to "+target+", which does not exist")
	bus(t, "", "create", "-x", link).expect(t, 1, link+": already exists")
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("create wrote through the dangling link: %v", err)
	}
	if now, _ := sysvObjects(); !slices.Equal(objs, now) {
		t.Fatalf("a failed create left objects: %v -> %v", objs, now)
	}
	if dest, err := os.Readlink(link); err != nil || dest != target {
		t.Fatalf("the link is now %q, %v", dest, err)
	}

	// A link to a live bus: that bus, left as it is.
	if _, err := Create(target, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeQuietly(target) })
	before, _ := os.ReadFile(target)
	bus(t, "", "create", link).expect(t, 0, "")
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Fatal("create through a link changed the bus")
	}
	if dest, _ := os.Readlink(link); dest != target {
		t.Fatal("create replaced the link to a live bus")
	}

	// A link to a stale bus (a well-known path linked to a bus kept
	// elsewhere): the repair makes the target a live bus again, by a new
	// file renamed over it, and the link still names it.
	sem, shm, _, _ := readBusFile(target)
	removeObjects(sem, shm)
	stale, _ := os.ReadFile(target)
	bus(t, "", "create", link).expect(t, 0, "")
	if after, _ := os.ReadFile(target); bytes.Equal(stale, after) {
		t.Fatalf("the link's target was not repaired: %q", after)
	}
	if dest, err := os.Readlink(link); err != nil || dest != target {
		t.Fatalf("the link now names %q (%v), want %q", dest, err, target)
	}
	if o, _, err := findBus(link); err != nil || o.stale() {
		t.Fatalf("the repaired bus is stale (%v) or unreadable (%v)", o.stale(), err)
	}
	if names, _ := filepath.Glob(filepath.Join(outside, ".target.tmp*")); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".link.tmp*")); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
}

// TestFileHelpers covers what replaced os.ReadFile, os.MkdirAll and
// filepath.EvalSymlinks.
func TestFileHelpers(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789"), 1000) // past readFile's first 4 KB
	if err := os.WriteFile(dir+"/f", big, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readFile(dir + "/f"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("readFile: %d bytes, %v", len(got), err)
	}
	if _, err := readFile(dir + "/none"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("readFile of nothing: %v", err)
	}
	if err := mkdirAll(dir+"/a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mkdirAll(dir+"/a/b/c", 0o755); err != nil {
		t.Fatalf("again: %v", err)
	}
	if st, err := os.Stat(dir + "/a/b/c"); err != nil || !st.IsDir() {
		t.Fatalf("mkdirAll made %v, %v", st, err)
	}
	if err := mkdirAll(dir+"/f/x", 0o755); err != syscall.ENOTDIR {
		t.Fatalf("mkdirAll under a file: %v", err)
	}
	os.Symlink("f", dir+"/l1")         // relative
	os.Symlink(dir+"/l1", dir+"/a/l2") // absolute, to a link
	os.Symlink("loop", dir+"/loop")    // never ends
	if got := followLinks(dir + "/a/l2"); got != dir+"/f" {
		t.Errorf("followLinks = %q, want %q", got, dir+"/f")
	}
	if got := followLinks(dir + "/f"); got != dir+"/f" {
		t.Errorf("followLinks of a file = %q", got)
	}
	if got := followLinks(dir + "/loop"); got != dir+"/loop" {
		t.Errorf("followLinks of a loop = %q", got)
	}
}
