package main

// Fuzz targets for every parser of outside input: the bus file, chmod's
// permissions, chown's owners, the command line (-t's durations above all)
// and messages. Each checks properties, not only the absence of a panic.
// Seeds are in testdata/fuzz/<FuzzName>/; `go test` runs them as tests, and
// `go test -run XXX -fuzz FuzzName -fuzztime 20s` searches further.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// keyLine is the bus file's grammar, written independently of parseKey:
// an optional + (atoll takes one), 1 to 19 digits.
var keyLine = regexp.MustCompile(`^\+?([0-9]{1,19})$`)

// modelKeys is what parseKeys must accept: exactly two newline-ended lines,
// each a key in 1..2^30-1.
func modelKeys(data []byte) (sem, shm int32, ok bool) {
	s := string(data)
	if !strings.HasSuffix(s, "\n") {
		return 0, 0, false
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2 {
		return 0, 0, false
	}
	var keys [2]int32
	for i, l := range lines {
		m := keyLine.FindStringSubmatch(l)
		if m == nil {
			return 0, 0, false
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || v < 1 || v > maxKey {
			return 0, 0, false
		}
		keys[i] = int32(v)
	}
	return keys[0], keys[1], true
}

var keysErrors = regexp.MustCompile(`^(empty|only one line|more than two lines|line [12] (is not ended by a newline|is empty|is not a decimal key|is out of range \(keys are 1 to 1073741823\)))$`)

func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{
		"1026582770\n336138497\n", "1\n1073741823\n", "+5\n6\n", "0005\n6\n",
		"", "5\n", "5", "5\n6", "5\n6\n7\n", "\n6\n", "0\n6\n", "-5\n6\n",
		"5\n1073741824\n", "5\n99999999999999999999\n", "5\n9999999999999999999\n",
		"5\n9223372036854775808\n", " 5\n6\n", "5\r\n6\r\n", "\xff\n\x00\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sem, shm, err := parseKeys(data)
		msem, mshm, ok := modelKeys(data)
		if (err == nil) != ok {
			t.Fatalf("parseKeys(%q): %v, but the grammar says ok=%v", data, err, ok)
		}
		if err != nil {
			if !keysErrors.MatchString(err.Error()) {
				t.Fatalf("parseKeys(%q): unexpected wording %q", data, err)
			}
			return
		}
		if sem != msem || shm != mshm {
			t.Fatalf("parseKeys(%q) = %d, %d; the grammar reads %d, %d", data, sem, shm, msem, mshm)
		}
		// What is accepted round-trips through the canonical form.
		canon := formatKeys(sem, shm)
		s2, h2, err := parseKeys(canon)
		if err != nil || s2 != sem || h2 != shm {
			t.Fatalf("formatKeys(%d, %d) = %q reads back as %d, %d, %v", sem, shm, canon, s2, h2, err)
		}
		if len(canon) > 64 {
			t.Fatalf("formatKeys gives %d bytes, more than readBusFile reads", len(canon))
		}
	})
}

// FuzzFormatKeys: parseKeys accepts exactly what formatKeys writes for keys
// in range, and refuses it for keys out of range.
func FuzzFormatKeys(f *testing.F) {
	for _, k := range [][2]int32{{1, 1}, {1026582770 & maxKey, 336138497}, {maxKey, maxKey}, {0, 5}, {-1, 5}, {5, maxKey + 1}, {-1 << 31, 1<<31 - 1}} {
		f.Add(k[0], k[1])
	}
	f.Fuzz(func(t *testing.T, sem, shm int32) {
		data := formatKeys(sem, shm)
		s2, h2, err := parseKeys(data)
		inRange := sem >= 1 && sem <= maxKey && shm >= 1 && shm <= maxKey
		if inRange != (err == nil) {
			t.Fatalf("formatKeys(%d, %d) = %q: parseKeys says %v", sem, shm, data, err)
		}
		if inRange && (s2 != sem || h2 != shm) {
			t.Fatalf("formatKeys(%d, %d) reads back as %d, %d", sem, shm, s2, h2)
		}
		if !inRange && !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("keys %d, %d: %v, want out of range", sem, shm, err)
		}
	})
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"600", "640", "0", "0755", "7777", "77777", "u", "g", "ug", "=ug", "+o", "-g",
		"u-g+o", "u=g", "a", "a-o", "", "rw", "u+r", "8", "=", "u=", "+", "-", "==u", "ugoa=+-"} {
		f.Add(s, uint32(0o640))
	}
	f.Fuzz(func(t *testing.T, s string, cur uint32) {
		cur &= 0o777 // the objects' mode, as ipcBuf.mode reads it
		mode, err := parseMode(s)
		if err != nil {
			if mode != nil {
				t.Fatalf("parseMode(%q): an error and a function", s)
			}
			if m := err.Error(); m != "empty permissions" && !strings.HasPrefix(m, "permissions "+strconv.Quote(s)+": ") {
				t.Fatalf("parseMode(%q): unexpected wording %q", s, m)
			}
			return
		}
		octal := strings.Trim(s, "01234567") == ""
		if !octal && strings.Trim(s, "ugoa=+-") != "" {
			t.Fatalf("parseMode(%q) accepted a character that is neither octal nor ugoa=+-", s)
		}
		for _, c := range []uint32{cur, 0, 0o777, 0o600, 0o070} {
			m := mode(c)
			if m&^0o777 != 0 {
				t.Fatalf("parseMode(%q) on %o = %o: not within 0777", s, c, m)
			}
			if octal {
				v, _ := strconv.ParseUint(s, 8, 32)
				if m != uint32(v)&0o777 {
					t.Fatalf("parseMode(%q) = %o, want %o", s, m, v&0o777)
				}
				continue
			}
			// Letters move whole classes: each class is all on, all off,
			// or as it was.
			for _, class := range []uint32{0o700, 0o070, 0o007} {
				if got := m & class; got != 0 && got != class && got != c&class {
					t.Fatalf("parseMode(%q) on %o = %o: class %o only partly set", s, c, m, class)
				}
			}
			// A class named only after + is on, only after - is off.
			if !strings.ContainsAny(s, "=a") && !strings.ContainsAny(s[:1], "ugo") {
				for i, class := range []uint32{0o700, 0o070, 0o007} {
					letter := "ugo"[i]
					last := strings.LastIndexByte(s, letter)
					if last < 0 {
						if m&class != c&class {
							t.Fatalf("parseMode(%q) on %o = %o: changed class %o it does not name", s, c, m, class)
						}
						continue
					}
					op := s[strings.LastIndexAny(s[:last], "+-")]
					if want := map[byte]uint32{'+': class, '-': 0}[op]; m&class != want {
						t.Fatalf("parseMode(%q) on %o = %o: class %o after %c", s, c, m, class, op)
					}
				}
			}
		}
		// A string with no + or - sets the mode outright: the current one
		// does not matter.
		if !octal && !strings.ContainsAny(s, "+-") && mode(0) != mode(0o777) {
			t.Fatalf("parseMode(%q) gives %o on 0 but %o on 777", s, mode(0), mode(0o777))
		}
	})
}

// passwdIDs reads name -> id from a passwd-like file, first entry winning,
// written independently of lookupDB.
func passwdIDs(file string) map[string]string {
	ids := map[string]string{}
	data, err := os.ReadFile(file)
	if err != nil {
		return ids
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if _, seen := ids[f[0]]; !seen {
			ids[f[0]] = f[2]
		}
	}
	return ids
}

func FuzzParseOwner(f *testing.F) {
	for _, s := range []string{"root", "root:root", "0", "0:0", "65534:65534", "nobody:nogroup", ":", ":root", "root:",
		"", "no-such-user-x", "root:no-such-group-x", "4294967295", "4294967296", "0:4294967295", "-1", "+1", "a:b:c", "root\n"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	users, groups := passwdIDs("/etc/passwd"), passwdIDs("/etc/group")
	resolve := func(name string, ids map[string]string) (int, bool) {
		// Numbers first; 4294967295 is no one, and on 32-bit arches ids
		// from 2^31 cannot be held.
		whole := func(n uint64) bool { return n != 1<<32-1 && n <= uint64(^uint(0)>>1) }
		if n, err := strconv.ParseUint(name, 10, 32); err == nil {
			return int(n), whole(n)
		}
		id, ok := ids[name]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseUint(id, 10, 32)
		return int(n), err == nil && whole(n)
	}
	f.Fuzz(func(t *testing.T, s string, groupOnly bool) {
		uid, gid, err := parseOwner(s, groupOnly)
		user, group, hasGroup := strings.Cut(s, ":")
		if groupOnly {
			user, group, hasGroup = "", s, true
		}
		var usage *usageError
		wantUID, wantGID := -1, -1
		if !groupOnly {
			if user == "" {
				if !errors.As(err, &usage) || usage.msg != "owner "+strconv.Quote(s)+": no user name" {
					t.Fatalf("parseOwner(%q): %v, want a usage error: no user name", s, err)
				}
				return
			}
			id, ok := resolve(user, users)
			if !ok {
				if err == nil || err.Error() != "no such user "+strconv.Quote(user)+" (not in /etc/passwd)" {
					t.Fatalf("parseOwner(%q): %v, want no such user", s, err)
				}
				return
			}
			wantUID = id
		}
		if hasGroup {
			if group == "" {
				if !errors.As(err, &usage) || usage.msg != "group "+strconv.Quote(s)+": no group name" {
					t.Fatalf("parseOwner(%q, %v): %v, want a usage error: no group name", s, groupOnly, err)
				}
				return
			}
			id, ok := resolve(group, groups)
			if !ok {
				if err == nil || err.Error() != "no such group "+strconv.Quote(group)+" (not in /etc/group)" {
					t.Fatalf("parseOwner(%q, %v): %v, want no such group", s, groupOnly, err)
				}
				return
			}
			wantGID = id
		}
		// Ids come back whole: never negative but for "not given" (-1),
		// on 32-bit arches too.
		if err == nil && (uid < -1 || gid < -1 || (!groupOnly && uid < 0) || (hasGroup && gid < 0)) {
			t.Fatalf("parseOwner(%q, %v) = %d, %d: an id overflowed", s, groupOnly, uid, gid)
		}
		if err != nil || uid != wantUID || gid != wantGID {
			t.Fatalf("parseOwner(%q, %v) = %d, %d, %v; want %d, %d", s, groupOnly, uid, gid, err, wantUID, wantGID)
		}
		// (uid_t)-1 is not an id: chown(2) reads it as "leave it", IPC_SET
		// refuses it.
		if int64(uid) == 1<<32-1 || int64(gid) == 1<<32-1 {
			t.Fatalf("parseOwner(%q, %v) = %d, %d: 4294967295 means no change to chown(2), it names nobody", s, groupOnly, uid, gid)
		}
	})
}

// FuzzParseDuration: -t takes exactly the positive Go durations, before or
// after the subcommand, and says which flag and value are wrong otherwise.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"500ms", "2s", "1m", "1h30m", "1.5s", "0", "0s", "-1s", "1", "soon", "", "1e3s",
		"9999999999h", "2562047h47m16.854775807s", "2562047h47m16.854775808s", "a: b", "-h", "--", "5µs", ".5s", "+3s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, perr := time.ParseDuration(s)
		good := perr == nil && d > 0
		for _, argv := range [][]string{
			{"wait", "-t", s, "PATH"},
			{"broadcast", "-t=" + s, "PATH", "msg"},
			{"-t", s, "listen", "PATH"},
		} {
			o, err := parseArgs(argv, io.Discard)
			if good {
				if err != nil || o.timeout != d || o.args[0] != "PATH" {
					t.Fatalf("parseArgs(%q): %v, timeout %v; want %v", argv, err, o, d)
				}
				continue
			}
			var usage *usageError
			if !errors.As(err, &usage) {
				t.Fatalf("parseArgs(%q) = %v, %v; want a usage error", argv, o, err)
			}
			why := "not a duration (try 500ms, 2s, 1m)"
			if perr == nil {
				why = "the duration must be more than 0"
			}
			if want := "-t " + strconv.Quote(s) + ": " + why; usage.msg != want {
				t.Fatalf("parseArgs(%q): %q, want %q", argv, usage.msg, want)
			}
		}
	})
}

// FuzzParseArgs: any command line (NUL-separated words) gives options that
// fit the subcommand, a one-line usage error, or help.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"create", "create\x00-x\x00/run/bus/x", "-x\x00create\x00p", "remove\x00p", "broadcast\x00-n\x00-t\x001s\x00p\x00m",
		"-n\x00broadcast\x00p\x00m", "broadcast\x00--\x00p\x00-m", "listen\x00-m\x00^a$\x00-r\x002\x00-0\x00p\x00echo",
		"wait\x00-t\x00soon\x00p", "wait\x00-m\x00(\x00p", "wait\x00-r\x0099\x00p", "chmod\x00rwx\x00p", "chown\x00:\x00p",
		"help", "help\x00wait", "-h", "--help", "wait\x00-h", "", "frobnicate", "-t", "-t\x001s", "--\x00listen\x00p",
		"listen\x00-m=a\x00p", "listen\x00--r=2\x00p", "info\x00-q\x00p", "-q", "-\x00listen",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv := strings.Split(s, "\x00")
		var out bytes.Buffer
		o, err := parseArgs(argv, &out)
		var usage *usageError
		switch {
		case err == nil:
			sc, ok := subcommands[o.name]
			if !ok {
				t.Fatalf("parseArgs(%q): unknown subcommand %q accepted", argv, o.name)
			}
			if n := len(o.args); n < sc.minArgs || n > sc.maxArgs {
				t.Fatalf("parseArgs(%q): %d operands for %s", argv, n, o.name)
			}
			if o.timeout < 0 || o.readyFD < -1 {
				t.Fatalf("parseArgs(%q): timeout %v, fd %d", argv, o.timeout, o.readyFD)
			}
			for flag, set := range map[byte]bool{'x': o.excl, 'n': o.nowait, '0': o.nul, 't': o.timeout != 0, 'm': o.match != nil, 'r': o.readyFD >= 0} {
				if set && !strings.ContainsRune(sc.flags, rune(flag)) {
					t.Fatalf("parseArgs(%q): -%c set for %s, which does not take it", argv, flag, o.name)
				}
			}
			if out.Len() != 0 {
				t.Fatalf("parseArgs(%q) printed %q", argv, out.String())
			}
		case errors.Is(err, errHelp):
			if !strings.HasPrefix(out.String(), "usage: bus ") && !strings.HasPrefix(out.String(), "bus: broadcast short messages") {
				t.Fatalf("parseArgs(%q): help printed %q", argv, out.String())
			}
		case errors.As(err, &usage):
			if usage.msg == "" || (!strings.Contains(s, "\n") && strings.Contains(usage.msg, "\n")) {
				t.Fatalf("parseArgs(%q): usage error %q is not one line", argv, usage.msg)
			}
			if _, ok := subcommands[usage.name]; usage.name != "" && !ok {
				t.Fatalf("parseArgs(%q): usage of unknown subcommand %q", argv, usage.name)
			}
			if out.Len() != 0 {
				t.Fatalf("parseArgs(%q) printed %q with an error", argv, out.String())
			}
		default:
			t.Fatalf("parseArgs(%q): %v is neither a usage error nor help", argv, err)
		}
	})
}

// FuzzCheckMessage: a message is sendable exactly when it is at most 2047
// bytes of UTF-8 without NUL, and then it comes out of the segment as it
// went in, whatever the segment held before.
func FuzzCheckMessage(f *testing.F) {
	for _, s := range []string{"", "0 hello", "1 ready", strings.Repeat("é", 1023) + "x", strings.Repeat("x", 2048),
		"bad \xc3", "a\x00b", "\xed\xa0\x80", "\xc0\xaf", "\xef\xbf\xbd", "\U0010FFFF", "line\nline"} {
		f.Add([]byte(s), byte(0xff))
	}
	f.Fuzz(func(t *testing.T, msg []byte, junk byte) {
		err := checkMessage(msg)
		want := len(msg) <= maxMessage && bytes.IndexByte(msg, 0) < 0 && utf8.Valid(msg)
		if (err == nil) != want {
			t.Fatalf("checkMessage(%q) = %v, want ok=%v", msg, err, want)
		}
		if err != nil {
			m := err.Error()
			if !strings.HasPrefix(m, "message too long ("+strconv.Itoa(len(msg))+" bytes; at most 2047)") &&
				!strings.HasPrefix(m, "message has a NUL byte at offset "+strconv.Itoa(bytes.IndexByte(msg, 0))) &&
				m != "message is not valid UTF-8" {
				t.Fatalf("checkMessage(%q): unexpected wording %q", msg, m)
			}
			return
		}
		// The writer's encoding (Broadcast) and the listener's decoding
		// (Next), on a segment full of something else.
		seg := bytes.Repeat([]byte{junk | 1}, shmSize)
		n := copy(seg[:maxMessage], msg)
		seg[n] = 0
		var buf [shmSize]byte
		copy(buf[:], seg)
		got := buf[:]
		if i := bytes.IndexByte(got, 0); i >= 0 {
			got = got[:i]
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("message %q came out of the segment as %q", msg, got)
		}
	})
}
