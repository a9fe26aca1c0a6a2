package main

// The bus file and its administration: reading and writing the file,
// finding, making, repairing, removing and changing a bus's objects, and
// the passwd and group look-ups their messages use.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// parseKeys reads the bus file's contents: two lines, each a decimal key in
// 1..2^30-1 ended by a newline, and nothing else.
func parseKeys(data []byte) (sem, shm int32, err error) {
	var keys [2]int32
	rest := data
	for i := range keys {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			if len(rest) == 0 {
				if i == 0 {
					return 0, 0, errors.New("empty")
				}
				return 0, 0, errors.New("only one line")
			}
			return 0, 0, errorf("line %d is not ended by a newline", i+1)
		}
		line := rest[:nl]
		rest = rest[nl+1:]
		k, err := parseKey(line)
		if err != nil {
			return 0, 0, errorf("line %d %w", i+1, err)
		}
		keys[i] = k
	}
	if len(rest) != 0 {
		return 0, 0, errors.New("more than two lines")
	}
	return keys[0], keys[1], nil
}

func parseKey(line []byte) (int32, error) {
	if len(line) == 0 {
		return 0, errors.New("is empty")
	}
	neg := line[0] == '-'
	digits := line
	if neg || line[0] == '+' {
		digits = line[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0, errors.New("is not a decimal key")
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errors.New("is not a decimal key")
		}
		v = v*10 + int64(c-'0')
	}
	if neg || v < 1 || v > maxKey {
		return 0, errorf("is out of range (keys are 1 to %d)", maxKey)
	}
	return int32(v), nil
}

func formatKeys(sem, shm int32) []byte {
	return []byte(strconv.Itoa(int(sem)) + "\n" + strconv.Itoa(int(shm)) + "\n")
}

// busFile is an open bus file: the keys come from the file that was
// checked, never from a second open of the path, which another user could
// have swapped in the meantime.
type busFile struct {
	fd       int
	st       syscall.Stat_t  // the file's, by fstat
	link     *syscall.Stat_t // the path's own, by lstat, if it is a symbolic link
	sem, shm int32
}

func (f *busFile) close() { syscall.Close(f.fd) }

// readBusFile reads and parses a bus file (see openBusFile).
func readBusFile(path string) (sem, shm int32, st *syscall.Stat_t, err error) {
	f, err := openBusFile(path)
	if err != nil {
		return 0, 0, nil, err
	}
	f.close()
	return f.sem, f.shm, &f.st, nil
}

// openBusFile opens, checks and parses a bus file without blocking on a
// FIFO or reading more than a bus file can hold, and keeps it open. Raw
// calls, not os.File: a one-shot broadcast then starts no poller
// (epoll_create, eventfd, epoll_ctl). The path is lstat'ed before and after
// the open, so that a file or link swapped in between is caught.
func openBusFile(path string) (*busFile, error) {
	var before syscall.Stat_t
	if err := syscall.Lstat(path, &before); err != nil {
		return nil, fileError(path, "reading", err)
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err == syscall.EACCES && before.Mode&syscall.S_IFMT == syscall.S_IFLNK && before.Uid != uint32(os.Geteuid()) {
		// fs.protected_symlinks: no one follows another's link in a
		// sticky folder that anyone may write, unless the folder is the
		// link owner's.
		var dir syscall.Stat_t
		if syscall.Stat(filepath.Dir(path), &dir) == nil && dir.Mode&0o1002 == 0o1002 && dir.Uid != before.Uid {
			return nil, failf(path, errUntrusted, "not trusted: it is a symbolic link made by %s in a sticky folder, which the kernel does not follow (fs.protected_symlinks); use the bus's own path, or remove the link (rm %s)", userName(before.Uid), path)
		}
	}
	if err != nil {
		return nil, fileError(path, "reading", err)
	}
	f := &busFile{fd: fd}
	fail := func(err error) (*busFile, error) { f.close(); return nil, err }
	if err := syscall.Fstat(fd, &f.st); err != nil {
		return fail(fileError(path, "reading", err))
	}
	switch f.st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		return fail(failf(path, nil, "is a directory, not a bus file"))
	default:
		return fail(failf(path, nil, "not a bus file (not a regular file)"))
	}
	same := func(a, b *syscall.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }
	if before.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		var after syscall.Stat_t
		if syscall.Lstat(path, &after) != nil || !same(&before, &after) {
			return fail(failf(path, errChanged, "the symbolic link changed while bus opened it; try again"))
		}
		f.link = &before
	} else if !same(&before, &f.st) {
		return fail(failf(path, errChanged, "the bus file changed while bus opened it; try again"))
	}
	var buf [64]byte
	n, err := readFull(fd, buf[:])
	if err != nil {
		return fail(fileError(path, "reading", err))
	}
	if n == len(buf) {
		return fail(failf(path, nil, "not a bus file (too long)"))
	}
	if f.sem, f.shm, err = parseKeys(buf[:n]); err != nil {
		return fail(failf(path, err, "not a bus file (%v)", err))
	}
	return f, nil
}

// fileError words a failure on the bus file itself.
func fileError(path, doing string, err error) error {
	errno, ok := as[syscall.Errno](err)
	if !ok {
		return failf(path, err, "%s: %v", doing, err)
	}
	switch errno {
	case syscall.ENOENT:
		var st syscall.Stat_t
		if doing == "creating" && syscall.Stat(filepath.Dir(path), &st) == syscall.ENOENT {
			return failf(path, err, "its folder %s does not exist", filepath.Dir(path))
		}
		if doing == "creating" { // the folder is there (/proc, say) and refuses
			return failf(path, err, "creating the bus file: %v", errno)
		}
		if syscall.Lstat(path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return failf(path, err, "a symbolic link to %s, which does not exist", followLinks(path))
		}
		return failf(path, err, "no such bus file")
	case syscall.ENOTDIR:
		return failf(path, err, "no such bus file (a parent is not a directory)")
	case syscall.EACCES, syscall.EPERM:
		return failf(path, err, "permission denied %s the bus file%s", doing, ownerNote(path, doing == "removing"))
	case syscall.ELOOP:
		return failf(path, err, "too many levels of symbolic links")
	}
	return failf(path, err, "%s the bus file: %v", doing, errno)
}

// ownerNote says who owns path and its mode, or its folder's (which
// decides who may add or remove files), for permission errors.
func ownerNote(path string, folder bool) string {
	var st syscall.Stat_t
	if folder || syscall.Stat(path, &st) != nil {
		if syscall.Stat(filepath.Dir(path), &st) != nil {
			return ""
		}
		sticky := ""
		if st.Mode&syscall.S_ISVTX != 0 {
			sticky = ": sticky, only the file's owner, the folder's or root may remove it"
		}
		return sprintf(" (its folder belongs to %s, mode %s%s)", userName(st.Uid), modeString(st.Mode&0o1777), sticky)
	}
	return sprintf(" (it belongs to %s, mode %s)", userName(st.Uid), modeString(st.Mode&0o777))
}

// randomRead fills b from the kernel's random pool. Not crypto/rand: it
// brings a FIPS DRBG, AES and SHA into the binary (about 390 KB of a 2 MiB
// budget) for the same bytes.
func randomRead(b []byte) error {
	fd, err := syscall.Open("/dev/urandom", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/dev/urandom", Err: err}
	}
	defer syscall.Close(fd)
	n, err := readFull(fd, b)
	if err == nil && n < len(b) {
		err = syscall.EIO // it never ends; if it does, it is broken
	}
	if err != nil {
		return &os.PathError{Op: "read", Path: "/dev/urandom", Err: err}
	}
	return nil
}

// randomKey returns a key in 1..2^30-1.
func randomKey() (int32, error) {
	var b [4]byte
	for {
		if err := randomRead(b[:]); err != nil {
			return 0, err
		}
		k := int32((uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24) & maxKey)
		if k != 0 {
			return k, nil
		}
	}
}

// randomName returns "random." and 30 characters of [0-9a-zA-Z], chosen
// uniformly (bytes of 248 and more are dropped: 248 = 4 * 62).
func randomName() (string, error) {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	name := []byte("random.")
	var pool [64]byte
	for len(name) < 37 {
		if err := randomRead(pool[:]); err != nil {
			return "", err
		}
		for _, c := range pool {
			if c < 248 && len(name) < 37 {
				name = append(name, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(name), nil
}

// defaultBusDir is where a bus made without a path goes.
func defaultBusDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "bus")
	}
	return "/run/bus"
}

// objects are a bus's semaphore array and segment, while being made.
type objects struct {
	semKey, shmKey int32
	semid, shmid   int
}

// makeObjects creates a fresh semaphore array (X = 1) and segment with
// mode perm, removing what it made if it fails part-way.
func makeObjects(perm int) (o objects, err error) {
	o.semid, o.shmid = -1, -1
	for {
		if o.semKey, err = randomKey(); err != nil {
			return o, err
		}
		var e syscall.Errno
		if o.semid, e = semget(o.semKey, nsems, ipcCreat|ipcExcl|perm); e == 0 {
			break
		} else if e == syscall.ENOSYS {
			return o, errNoIPC
		} else if e != syscall.EEXIST {
			return o, errorf("creating the semaphores: %w", e)
		}
	}
	// All five at once, as libbus does: Linux zero-fills a new array, but
	// nothing promises it (POSIX leaves the values unspecified).
	var vals ipcBuf
	vals.setUshort(semX, 1)
	if e := semctlBuf(o.semid, semSetall, &vals); e != 0 {
		o.remove()
		return o, errorf("setting up the semaphores: %w", e)
	}
	for {
		if o.shmKey, err = randomKey(); err != nil {
			o.remove()
			return o, err
		}
		var e syscall.Errno
		if o.shmid, e = shmget(o.shmKey, shmSize, ipcCreat|ipcExcl|perm); e == 0 {
			break
		} else if e != syscall.EEXIST {
			o.remove()
			return o, errorf("creating the shared memory: %w", e)
		}
	}
	return o, nil
}

func (o *objects) remove() {
	if o.semid >= 0 {
		semctl(o.semid, 0, ipcRmid, 0)
	}
	if o.shmid >= 0 {
		shmctl(o.shmid, ipcRmid, nil)
	}
}

// Create makes a bus at path, or at a random path in the default folder when
// path is "". It returns the path. An existing bus is left alone (or, with
// excl, an error); a stale one is repaired; anything else is never touched.
func Create(path string, excl bool) (string, error) {
	if path == "" {
		dir := defaultBusDir()
		if err := mkdirAll(dir, 0o755); err != nil {
			return "", failf(dir, err, "making the bus folder: %v", err)
		}
		for {
			name, err := randomName()
			if err != nil {
				return "", failf(dir, err, "choosing a random name: %v", err)
			}
			p := filepath.Join(dir, name)
			_, err = createAt(p)
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return p, err
		}
	}
	existed, err := createAt(path)
	if !existed {
		return path, err
	}
	if excl {
		return path, failf(path, os.ErrExist, "already exists")
	}
	return path, repairIfStale(path)
}

// createAt makes a bus file at path with new objects, atomically: the file is
// written under a temporary name and linked into place, so no reader sees it
// half-written and two creates racing for one path make one bus. existed
// reports that path was there already (nothing was made then).
func createAt(path string) (existed bool, err error) {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) == nil {
		return true, os.ErrExist
	}
	o, err := makeObjects(0o600)
	if err != nil {
		return false, failf(path, err, "%v", err)
	}
	tmp, err := writeTemp(path, formatKeys(o.semKey, o.shmKey), nil)
	if err != nil {
		o.remove()
		return false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		o.remove()
		if errors.Is(err, os.ErrExist) {
			return true, os.ErrExist
		}
		return false, fileError(path, "creating", unwrapPathError(err))
	}
	return false, nil
}

// writeTemp writes data to a new file beside path, with like's owner and
// mode if like is given (0600 otherwise), and returns its name.
func writeTemp(path string, data []byte, like *syscall.Stat_t) (string, error) {
	dir, base := filepath.Split(path)
	for {
		name, err := randomName()
		if err != nil {
			return "", failf(path, err, "choosing a temporary name: %v", err)
		}
		tmp := filepath.Join(dir, "."+base+".tmp"+name[7:15])
		fd, err := syscall.Open(tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err == syscall.EEXIST {
			continue
		}
		if err != nil {
			return "", fileError(path, "creating", err)
		}
		if like != nil {
			syscall.Fchown(fd, int(like.Uid), int(like.Gid)) // keeps ours if not permitted
			syscall.Fchmod(fd, like.Mode&0o777)
		}
		err = writeAll(fd, data)
		if cerr := syscall.Close(fd); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return "", failf(path, err, "writing the bus file: %v", err)
		}
		return tmp, nil
	}
}

func unwrapPathError(err error) error {
	switch e := err.(type) {
	case *os.PathError:
		return e.Err
	case *os.LinkError:
		return e.Err
	}
	return err
}

// readFile is os.ReadFile without os's FileInfo, whose ModTime would keep
// time.Time's formatting and zone loading in the binary.
func readFile(name string) ([]byte, error) {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	data := make([]byte, 0, 4096)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := readFull(fd, data[len(data):cap(data)])
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: name, Err: err}
		}
		if data = data[:len(data)+n]; len(data) < cap(data) {
			return data, nil // the end of the file
		}
	}
}

// readFull reads into b until it is full or the file ends, through the
// interruptions the runtime's signals cause, and returns how much it read.
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// followLinks follows path while it is a symbolic link (40 at most, as
// the kernel does) and returns what it names. Not filepath.EvalSymlinks:
// see readFile.
func followLinks(path string) string {
	buf := make([]byte, syscall.PathMax)
	for range 40 {
		n, err := syscall.Readlink(path, buf)
		if err != nil {
			break
		}
		target := string(buf[:n])
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return path
}

// mkdirAll is os.MkdirAll (see readFile).
func mkdirAll(dir string, perm uint32) error {
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) == nil {
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return syscall.ENOTDIR
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := syscall.Mkdir(dir, perm); err != nil && err != syscall.EEXIST {
		return err
	}
	return nil
}

// findBus opens the bus file at path, finds its objects (an id of -1 is an
// object gone: the bus is stale) and checks that the two may be trusted
// together (see trust). Objects that are there but not a bus's are an
// error, the same words for every subcommand, which then touches nothing
// (not even the other half of a stale bus). On success the file is open:
// the caller closes it.
func findBus(path string) (o objects, f *busFile, err error) {
	if f, err = openBusFile(path); err != nil {
		return o, nil, err
	}
	o.semKey, o.shmKey = f.sem, f.shm
	if err = o.find(path); err == nil {
		err = f.trust(path, o)
	}
	if err != nil {
		f.close()
		return o, nil, err
	}
	return o, f, nil
}

// A bus file is a claim, not a credential: anyone who may write where it
// lies can write two keys into a file, and every key is public in
// /proc/sysvipc. Before bus acts through a file, trust checks that nobody
// but the bus's owner could have made it name those objects:
//   - a symbolic link given as the path belongs to the caller, to root or
//     to the bus's owner (a link is a file too, and anyone may make one to
//     anything);
//   - the file has one name: a hard link made by another user elsewhere
//     would otherwise pass for the owner's file (create links its file
//     into place from a temporary name, so that second name, while it
//     lasts, is waited out);
//   - only its owner may write it (no group or other write bit);
//   - the file's owner owns each object there is (its IPC uid, which
//     IPC_SET changes, not the creator's): a bus made by bus or by libbus
//     is made by one user, and `bus chown` and bus_chown(3) change the
//     three together.
//
// What it cannot tell apart: two buses of one user, and objects whose
// owner was changed by IPC_SET alone, or a file by chown(1) alone, which
// are refused until the three agree again.
func (f *busFile) trust(path string, o objects) error {
	untrusted := func(format string, args ...any) error {
		return failf(path, errUntrusted, "not trusted: "+format, args...)
	}
	if l := f.link; l != nil {
		if me := uint32(os.Geteuid()); l.Uid != me && l.Uid != 0 && l.Uid != f.st.Uid {
			return untrusted("it is a symbolic link made by %s to a bus of %s: use the bus's own path, or remove the link (rm %s)", userName(l.Uid), userName(f.st.Uid), path)
		}
	}
	// A create in progress: its file has its temporary name too until
	// the create removes it, microseconds later (more on a loaded machine).
	if f.st.Nlink == 2 && tempName(path, &f.st) {
		for wait := time.Now().Add(2 * time.Second); f.st.Nlink > 1 && time.Now().Before(wait); {
			time.Sleep(time.Millisecond)
			if err := syscall.Fstat(f.fd, &f.st); err != nil {
				return fileError(path, "reading", err)
			}
		}
	}
	if f.st.Nlink > 1 {
		return untrusted("the bus file has %d names (hard links): another user may have linked it to a name of theirs; remove the name that its owner did not make (find / -xdev -samefile %s)", uint64(f.st.Nlink), path)
	}
	if f.st.Mode&0o022 != 0 {
		return untrusted("the bus file is writable by others than its owner (mode %s), who could point it at another bus; `chmod go-w %s` if the bus is yours", modeString(f.st.Mode&0o777), path)
	}
	var owners [2]uint32
	var whose [2]string
	n := 0
	for _, x := range o.each() {
		if x.id < 0 {
			continue
		}
		uid, ok := objectOwner(x.sem, x.key, x.id)
		if !ok {
			return untrusted("cannot tell who owns its objects (key %d)", x.key)
		}
		if uid != f.st.Uid {
			owners[n], whose[n] = uid, "semaphores"
			if !x.sem {
				whose[n] = "shared memory"
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	what := whose[0]
	if n == 2 {
		if owners[0] == owners[1] {
			what = "semaphores and shared memory"
		} else {
			what = "semaphores to " + userName(owners[0]) + " and its shared memory"
			owners[0] = owners[1]
		}
	}
	return untrusted("the bus file belongs to %s, its %s to %s: someone may have written the file to point at a bus not theirs; rm %s if you did not make it, or, if it is that bus's own file, chown %d %s", userName(f.st.Uid), what, userName(owners[0]), path, owners[0], path)
}

// tempName reports whether the file st of path also has the name that
// createAt gives it before linking it into place (".NAME.tmpXXXXXXXX" in
// the same folder), which it removes right after.
func tempName(path string, st *syscall.Stat_t) bool {
	path = followLinks(path)
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	prefix := "." + base + ".tmp"
	buf := make([]byte, 8192)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err != nil || n <= 0 {
			return false
		}
		_, _, names := syscall.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			var tmp syscall.Stat_t
			if len(name) == len(prefix)+8 && strings.HasPrefix(name, prefix) &&
				syscall.Lstat(filepath.Join(dir, name), &tmp) == nil && tmp.Dev == st.Dev && tmp.Ino == st.Ino {
				return true
			}
		}
	}
}

// objectOwner returns the owner (IPC uid) of the object id of key: by
// IPC_STAT, or, where read permission is lacking (an owner who took it
// from themselves, root reading another's), /proc/sysvipc.
func objectOwner(sem bool, key int32, id int) (uint32, bool) {
	ctl := shmctl
	if sem {
		ctl = semctlBuf
	}
	var b ipcBuf
	if ctl(id, ipcStat, &b) == 0 {
		return b.uid(), true
	}
	p, ok := procObject(sem, key)
	return p.uid, ok && p.id == int64(id)
}

// find finds the objects of o's keys (see findBus).
func (o *objects) find(path string) (err error) {
	if o.semid, err = findObject(path, true, o.semKey); err == nil {
		o.shmid, err = findObject(path, false, o.shmKey)
	}
	return err
}

// objectRef is one of a bus's objects: which, its key and id (-1: gone).
type objectRef struct {
	sem bool
	key int32
	id  int
}

func (o *objects) each() [2]objectRef {
	return [2]objectRef{{true, o.semKey, o.semid}, {false, o.shmKey, o.shmid}}
}

func (o *objects) stale() bool { return o.semid < 0 || o.shmid < 0 }

// findObject finds one object of a bus by its key, and checks that it is a
// bus's: exactly 5 semaphores, or a segment of exactly 2048 bytes. semget
// and shmget with flags 0 ask for no permission and refuse (EINVAL) an
// object smaller than asked for, so two calls pin the size for any user;
// IPC_STAT would need read permission (leaving a user who may not read the
// objects unchecked) and semid64_ds's layout, which differs by arch.
func findObject(path string, sem bool, key int32) (int, error) {
	get, n, what := shmget, shmSize, "shared memory"
	if sem {
		get, n, what = semget, nsems, "semaphores"
	}
	id, e := get(key, n, 0)
	if e == 0 {
		if _, e = get(key, n+1, 0); e != 0 {
			return id, nil
		}
	}
	switch e {
	case syscall.ENOENT:
		return -1, nil
	case 0, syscall.EINVAL: // more, fewer
		cmp := "fewer than"
		if e == 0 {
			cmp = "more than"
		} else if !sem {
			cmp = "less than"
		}
		has := sprintf("%s %d", cmp, n)
		if p, ok := procObject(sem, key); ok { // the number, for the message only
			has = strconv.FormatInt(p.nsems+p.size, 10)
		}
		if sem {
			return -1, failf(path, syscall.EINVAL, "not a bus: the semaphore array of key %d has %s semaphores, a bus has %d", key, has, nsems)
		}
		return -1, failf(path, syscall.EINVAL, "not a bus: the shared memory of key %d is %s bytes, a bus's is %d", key, has, shmSize)
	}
	if e == syscall.ENOSYS {
		return -1, failf(path, e, "%v", errNoIPC)
	}
	return -1, failf(path, e, "finding the %s (key %d): %v", what, key, e)
}

// repairIfStale gives a stale bus new objects with the file's owner, group
// and class permissions, and rewrites the file (under a lock, so that two
// repairs racing make one bus).
func repairIfStale(path string) error {
	old, f, err := findBus(path)
	if err != nil || !old.stale() {
		if f != nil {
			f.close()
		}
		return err
	}
	defer f.close()
	// Whoever else repaired it would own the new objects and, unless root,
	// the file: a bus taken over. The file's owner or root makes it anew.
	if me := uint32(os.Geteuid()); me != 0 && me != f.st.Uid {
		return failf(path, syscall.EPERM, "stale bus of %s (%s): only its owner or root may make it anew", userName(f.st.Uid), goneWords(old.semid < 0, old.shmid < 0))
	}
	for {
		err = syscall.Flock(f.fd, syscall.LOCK_EX)
		if err != syscall.EINTR { // the runtime's signals interrupt the wait
			break
		}
	}
	if err != nil {
		return failf(path, err, "locking the bus file: %v", err)
	}
	old, f2, err := findBus(path) // another create may have repaired it
	if err != nil {
		return err
	}
	defer f2.close()
	if !old.stale() {
		return nil
	}
	st := &f2.st
	// A link (a well-known path naming a bus kept elsewhere) stays a link:
	// the bus it names is the one repaired.
	path = followLinks(path)
	o, err := makeObjects(int(objectMode(st.Mode)))
	if err != nil {
		return failf(path, err, "repairing the stale bus: %v", err)
	}
	tmp, err := writeTemp(path, formatKeys(o.semKey, o.shmKey), st)
	if err == nil {
		// The objects get the new file's owner and group: the old ones
		// where writeTemp could keep them (root; an owner in the group),
		// else whoever repaired it, never objects that the file disowns.
		var now syscall.Stat_t
		if err = syscall.Stat(tmp, &now); err != nil {
			err = fileError(path, "rewriting", err)
		} else {
			err = setObjects(path, "changing", o, func(b *ipcBuf) { b.setOwner(now.Uid, now.Gid) })
		}
		if err == nil {
			if err = syscall.Rename(tmp, path); err != nil {
				err = fileError(path, "rewriting", err)
			}
		}
		if err == nil {
			old.remove() // whichever half was left, once nothing can fail
		}
		if err != nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		o.remove()
	}
	return err
}

// objectMode is the IPC mode that a bus file's mode stands for: any bit of
// a class grants that class read and write.
func objectMode(fileMode uint32) uint32 {
	var m uint32
	for _, class := range []uint32{0o700, 0o070, 0o007} {
		if fileMode&class != 0 {
			m |= 0o666 & class
		}
	}
	return m
}

// fileMode is the bus file's mode for the classes granted in objMode: read
// for each, write for the owner only (the C tool's bus_chmod).
func fileMode(objMode uint32) uint32 {
	var m uint32
	if objMode&0o700 != 0 {
		m |= 0o600
	}
	if objMode&0o070 != 0 {
		m |= 0o040
	}
	if objMode&0o007 != 0 {
		m |= 0o004
	}
	return m
}

// removeObjects removes what is there of the objects of keys sem and shm
// (the tests' tidying, and a reboot's doing).
func removeObjects(sem, shm int32) {
	if id, e := semget(sem, 0, 0); e == 0 {
		semctl(id, 0, ipcRmid, 0)
	}
	if id, e := shmget(shm, 0, 0); e == 0 {
		shmctl(id, ipcRmid, nil)
	}
}

// Remove removes the bus's objects, then its file. A stale bus's file is
// removed too, reported by a note. Everything that may refuse is asked
// first, so that a refused remove leaves the bus whole and working: the
// objects' IPC_RMID by an IPC_SET that changes nothing (the kernel grants
// both to the same users: the owner, the creator, CAP_SYS_ADMIN), then the
// file's unlink by renaming it aside in its folder (the same permission,
// the sticky bit's included). Once the file is aside, nothing is left that
// can refuse. A listener opening the path from then on finds no bus file,
// as it would a moment later; one that opened it before finds the bus
// removed. Only an unforeseen refusal of IPC_RMID (a security module) puts
// the file back, and the bus may then have lost its semaphores.
func Remove(path string) (note string, err error) {
	o, f, err := findBus(path)
	if err != nil {
		return "", err
	}
	defer f.close()
	if err := setObjects(path, "removing", o, func(*ipcBuf) {}); err != nil {
		return "", err
	}
	name, err := randomName()
	if err != nil {
		return "", failf(path, err, "choosing a temporary name: %v", err)
	}
	dir, base := filepath.Split(path)
	aside := filepath.Join(dir, "."+base+".rm"+name[7:15])
	if err := syscall.Rename(path, aside); err != nil {
		return "", fileError(path, "removing", err)
	}
	// The name moved aside must be the one checked: a file swapped in
	// since then goes back, and nothing is removed.
	checked := &f.st
	if f.link != nil {
		checked = f.link
	}
	var st syscall.Stat_t
	if syscall.Lstat(aside, &st) != nil || st.Dev != checked.Dev || st.Ino != checked.Ino {
		syscall.Rename(aside, path)
		return "", failf(path, errChanged, "the bus file changed while bus removed it; nothing was removed, try again")
	}
	done := func(e syscall.Errno) bool { return e == 0 || e == syscall.EINVAL || e == syscall.EIDRM } // gone meanwhile will do
	var e syscall.Errno
	what, key := "semaphores", o.semKey
	if o.semid >= 0 {
		_, e = semctl(o.semid, 0, ipcRmid, 0)
	}
	if done(e) && o.shmid >= 0 {
		what, key, e = "shared memory", o.shmKey, shmctl(o.shmid, ipcRmid, nil)
	}
	if !done(e) {
		syscall.Rename(aside, path)
		return "", ownerError(path, "removing", what, key, e)
	}
	if err := syscall.Unlink(aside); err != nil {
		return "", fileError(path, "removing", err)
	}
	if o.stale() {
		return path + ": the bus was stale (its objects were gone); removed its file", nil
	}
	return "", nil
}

// ownerError words a failure to remove or change (IPC_RMID, IPC_SET) one
// of a bus's objects, which only its owner, its creator or root may do.
func ownerError(path, doing, what string, key int32, e syscall.Errno) error {
	if e == syscall.EPERM || e == syscall.EACCES {
		owner := ""
		if o, ok := procObject(what == "semaphores", key); ok {
			owner = sprintf(" (owned by %s)", userName(o.uid))
		}
		return failf(path, e, "permission denied: only the bus's owner or root may change or remove its %s%s", what, owner)
	}
	return failf(path, e, "%s the %s: %v", doing, what, e)
}

// setObjects applies change to the IPC_STAT of each object there is and
// IPC_SETs it. Without read permission, IPC_STAT is refused, but IPC_SET
// (which asks only to be the owner) is not: /proc/sysvipc, which anyone
// may read, then gives the owner, group and mode it sets.
func setObjects(path, doing string, o objects, change func(*ipcBuf)) error {
	for _, x := range o.each() {
		if x.id < 0 {
			continue
		}
		ctl, what := shmctl, "shared memory"
		if x.sem {
			ctl, what = semctlBuf, "semaphores"
		}
		var b ipcBuf
		e := ctl(x.id, ipcStat, &b)
		if e == syscall.EACCES {
			if p, ok := procObject(x.sem, x.key); ok {
				b.setOwner(p.uid, p.gid)
				b.setMode(p.perms)
				e = 0
			}
		}
		if e == 0 {
			change(&b)
			e = ctl(x.id, ipcSet, &b)
		}
		if e != 0 {
			return ownerError(path, doing, what, x.key, e)
		}
	}
	return nil
}

// goneWords says which of a stale bus's objects are gone.
func goneWords(semGone, shmGone bool) string {
	switch {
	case semGone && shmGone:
		return "its semaphores and shared memory are gone"
	case semGone:
		return "its semaphores are gone"
	}
	return "its shared memory is gone"
}

// openObjects finds a bus's objects for changing them (no permission
// asked). On success the file is open: the caller closes it.
func openObjects(path string) (o objects, f *busFile, err error) {
	if o, f, err = findBus(path); err == nil && o.stale() {
		f.close()
		return o, nil, failf(path, errStale, "stale bus: %s; `bus create %s` makes it anew", goneWords(o.semid < 0, o.shmid < 0), path)
	}
	return
}

// Chmod gives the classes that mode returns access to the bus; mode gets
// the classes that have it now, read off the semaphores (the objects decide
// who gets in, the file only follows them). The file is changed through the
// descriptor that was checked, not by its path.
func Chmod(path string, mode func(current uint32) uint32) error {
	o, f, err := openObjects(path)
	if err != nil {
		return err
	}
	defer f.close()
	m := uint32(1 << 31) // not yet known
	err = setObjects(path, "changing", o, func(b *ipcBuf) {
		if m == 1<<31 {
			m = objectMode(mode(b.mode()))
		}
		b.setMode(m)
	})
	if err != nil {
		return err
	}
	if err := syscall.Fchmod(f.fd, fileMode(m)); err != nil {
		return fileError(path, "changing the mode of", err)
	}
	return nil
}

// Chown gives the bus's file and objects to uid and gid (-1 keeps one),
// the file through the descriptor that was checked.
func Chown(path string, uid, gid int) error {
	o, f, err := openObjects(path)
	if err != nil {
		return err
	}
	defer f.close()
	st := &f.st
	u, g := st.Uid, st.Gid
	if uid >= 0 {
		u = uint32(uid)
	}
	if gid >= 0 {
		g = uint32(gid)
	}
	// The file first: the kernel refuses more there (a user may not give a
	// file away, nor to a group they are not in), and a refusal must leave
	// the objects as they were.
	if err := syscall.Fchown(f.fd, int(u), int(g)); err != nil {
		if err == syscall.EPERM && os.Geteuid() != 0 {
			return failf(path, err, "permission denied: only root may give a bus to another user; its owner (%s) may give it only to a group they are in", userName(st.Uid))
		}
		return fileError(path, "changing the owner of", err)
	}
	if err := setObjects(path, "changing", o, func(b *ipcBuf) { b.setOwner(u, g) }); err != nil {
		syscall.Fchown(f.fd, int(st.Uid), int(st.Gid)) // as it was, if we may
		return err
	}
	return nil
}

// procEntry is one line of /proc/sysvipc/sem or /proc/sysvipc/shm.
type procEntry struct {
	key, id    int64
	perms      uint32
	uid, gid   uint32
	nsems      int64 // sem only
	size       int64 // shm only
	nattch     int64 // shm only
	cpid, lpid int64 // shm only
}

// procObject looks key up in /proc/sysvipc, readable by anyone, so that an
// error can name the owner of an object its caller may not touch.
func procObject(sem bool, key int32) (procEntry, bool) {
	name := "/proc/sysvipc/shm"
	if sem {
		name = "/proc/sysvipc/sem"
	}
	data, err := readFile(name)
	if err != nil {
		return procEntry{}, false
	}
	lines := strings.Split(string(data), "\n")
	for _, line := range lines[min(1, len(lines)):] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		num := func(i int, base int) int64 { v, _ := strconv.ParseInt(f[i], base, 64); return v }
		if num(0, 10) != int64(key) {
			continue
		}
		e := procEntry{key: num(0, 10), id: num(1, 10), perms: uint32(num(2, 8))}
		if sem { // key semid perms nsems uid gid cuid cgid ...
			e.nsems, e.uid, e.gid = num(3, 10), uint32(num(4, 10)), uint32(num(5, 10))
		} else if len(f) >= 9 { // key shmid perms size cpid lpid nattch uid gid ...
			e.size, e.cpid, e.lpid, e.nattch = num(3, 10), num(4, 10), num(5, 10), num(6, 10)
			e.uid, e.gid = uint32(num(7, 10)), uint32(num(8, 10))
		}
		return e, true
	}
	return procEntry{}, false
}

// userName and groupName read /etc/passwd and /etc/group (no C library).
func userName(uid uint32) string  { return idName("/etc/passwd", uid, "uid") }
func groupName(gid uint32) string { return idName("/etc/group", gid, "gid") }

func idName(file string, id uint32, kind string) string {
	n := strconv.FormatUint(uint64(id), 10)
	if name, ok := lookupDB(file, func(f []string) bool { return f[2] == n }); ok {
		return name + " (" + kind + " " + n + ")"
	}
	return kind + " " + n
}

// lookupDB returns field 0 of the first line of a passwd-like file that match
// accepts, or field 2 with lookupID.
func lookupDB(file string, match func(fields []string) bool) (string, bool) {
	data, err := readFile(file)
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && !strings.HasPrefix(line, "#") && match(f) {
			return f[0], true
		}
	}
	return "", false
}

// lookupID resolves a user or group given by name or number. 4294967295
// is (uid_t)-1, "no change" to chown(2) and refused by IPC_SET: it names
// no one. An id that int cannot hold (2^31 and up on 32-bit arches) is
// refused too, rather than turned negative, which Chown reads as "keep".
func lookupID(file, name string) (int, bool) {
	whole := func(n uint64) bool { return n != 1<<32-1 && uint64(int(n)) == n }
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return int(n), whole(n)
	}
	var id string
	_, ok := lookupDB(file, func(f []string) bool {
		if f[0] == name {
			id = f[2]
			return true
		}
		return false
	})
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 10, 32)
	return int(n), err == nil && whole(n)
}
