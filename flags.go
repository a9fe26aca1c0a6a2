package main

// The command line: each subcommand's flags, parsed afresh for each run,
// and the parsers of its operands (permissions, owners).

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// subcommand describes one subcommand's command line.
type subcommand struct {
	synopsis string // after "bus "
	flags    string // the flags it takes, by name
	minArgs  int
	maxArgs  int
	help     string // the rest of `bus help NAME`, example included
}

var subcommands = map[string]subcommand{
	"create": {"create [-x] [PATH]", "x", 0, 1, `Make a bus. Without PATH, at a random path under $XDG_RUNTIME_DIR/bus/
(or /run/bus/), printed on stdout. An existing bus is left as it is (with -x:
an error); a stale one (its semaphores gone, e.g. after a reboot) is made
anew in place, by its owner or root. A file that is not a bus is never
overwritten.

  -x  fail if PATH exists

Example:
  bus create /run/bus/net`},
	"remove": {"remove PATH", "", 1, 1, `Remove a bus: its semaphores, its shared memory and its file. Listeners
still waiting on it exit with status 1. A stale bus's file is removed too.

Example:
  bus remove /run/bus/net`},
	"broadcast": {"broadcast [-n] [-t DURATION] [-0] PATH MESSAGE|-", "nt0", 2, 2, `Send MESSAGE to every listener, returning once each has copied it. With -
for MESSAGE, send each line of stdin as one message, in order. A message is
at most 2047 bytes of UTF-8 text without NUL; by convention it starts with
the sender's pid (or 0) and a space.

  -n           fail (status 1) if another process is broadcasting
  -t DURATION  give up after DURATION (1.5, 500ms, 2s, 1m; per message from
               stdin): status 124, with how many listeners missed it
  -0           with -: messages end with NUL, not newline

Example:
  bus broadcast /run/bus/net "$$ up eth0"`},
	"listen": {"listen [-t DURATION] [-m REGEXP [-v]] [-r FD] [-0] PATH [COMMAND]", "tmvr0", 1, 2, `Receive every message until killed. With COMMAND, run sh -c COMMAND for each
message with $msg set to it (in order, alongside the listener); without,
print each message on stdout, one per line.

  -t DURATION  stop after DURATION (1.5, 500ms, 2s, 1m): status 124
  -m REGEXP    only messages that REGEXP (Go syntax) matches
  -v           with -m: only messages that REGEXP does not match
  -r FD        once listening, write a newline to FD (not 1 or 2) and close it
  -0           end printed messages with NUL, not newline

Example:
  bus listen /run/bus/net 'logger -t net "$msg"'`},
	"wait": {"wait [-t DURATION] [-m REGEXP [-v]] [-r FD] [-0] PATH [COMMAND]", "tmvr0", 1, 2, `Like listen, for one message (the first that -m selects). With COMMAND,
run it with $msg set and exit with its status; without, print the message.

  -t DURATION  give up after DURATION (1.5, 500ms, 2s, 1m): status 124
  -m REGEXP    wait for a message that REGEXP (Go syntax) matches
  -v           with -m: for a message that REGEXP does not match
  -r FD        once listening, write a newline to FD (not 1 or 2) and close it
  -0           end the printed message with NUL, not newline

Example:
  msg=$(bus wait -t 10s -m '^[0-9]+ ready$' /run/bus/net) || exit 1`},
	"chmod": {"chmod PERMISSIONS PATH", "", 2, 2, `Give classes of users access to a bus. PERMISSIONS is octal (any bit of a
class grants it: 600, 660, 666) or letters u, g, o with =, + and -, read left
to right (a bare "ug" means "=ug"). Access is all or nothing per class.

Example:
  bus chmod ug /run/bus/net`},
	"chown": {"chown OWNER[:GROUP] PATH", "", 2, 2, `Give a bus (its file and its objects) to another user, and group.
OWNER and GROUP are names (from /etc/passwd, /etc/group) or numbers.

Example:
  bus chown daemon:daemon /run/bus/net`},
	"chgrp": {"chgrp GROUP PATH", "", 2, 2, `Give a bus (its file and its objects) to another group.

Example:
  bus chgrp wheel /run/bus/net`},
	"info": {"info PATH", "", 1, 1, `Show what a bus is made of and who uses it: keys, owners, modes, listeners,
a broadcast in progress, waiters on each semaphore, and every process
attached with its state (a stopped listener usually holds a bus up).
Status 0 only if the bus works, else 1 with a line on stderr per problem.

Example:
  bus info /run/bus/net`},
	"help": {"help [SUBCOMMAND]", "", 0, 1, `Show how to use bus, or one subcommand.

Example:
  bus help wait`},
	"version": {"version", "", 0, 0, `Show which bus this is: "bus VERSION", from what the go command recorded
when it built bus (the module's version, else the commit, else devel).
Same as bus --version.

Example:
  bus version`},
}

var order = []string{"create", "remove", "broadcast", "listen", "wait", "chmod", "chown", "chgrp", "info", "help", "version"}

// options is a parsed command line.
type options struct {
	name    string
	excl    bool           // -x
	nowait  bool           // -n
	nul     bool           // -0
	timeout time.Duration  // -t, 0 for none
	match   *regexp.Regexp // -m
	invert  bool           // -v: the messages -m does not match
	readyFD int            // -r, -1 for none
	args    []string
}

// usageError is a command line that is not understood: exit status 2.
type usageError struct {
	msg  string
	name string // the subcommand whose synopsis to show, "" for all
}

func (e *usageError) Error() string { return e.msg }

// errHelp means help was asked for and shown.
var errHelp = errors.New("help shown")

// valueFlags take a value (an option-argument); the others are switches.
const valueFlags = "tmr"

// switchFlag is what a flag without a value sets: a new switch is one line
// here, its letter in its subcommands' flags, and its help.
func (o *options) switchFlag(c byte) *bool {
	for _, f := range [...]struct {
		c byte
		p *bool
	}{
		{'x', &o.excl},
		{'n', &o.nowait},
		{'0', &o.nul},
		{'v', &o.invert},
	} {
		if f.c == c {
			return f.p
		}
	}
	return nil // not a switch: parseFlag asks only for switches
}

// parseArgs parses the command line in POSIX utility syntax, as the C
// tool's arg.h reads it, and what Go's flag package read before it:
//   - flags after the subcommand (as the C tool's manual writes them) or
//     before it (as the C tool parses them), up to the first operand;
//   - grouped (-n0), a value attached (-t1s, -t=1s) or the next word
//     (-t 1s); a flag taking a value takes the rest of its group (-tn);
//   - --x, --x=V and -x=false, as the flag package read them;
//   - the first -- ends the flags, wherever it is, and is no operand;
//   - -h, -help, --help: help, after PATH too.
//
// After the first operand, a word starting with one of the subcommand's
// flags is refused: `bus listen B -t 1s` would run "-t" as COMMAND.
func parseArgs(args []string, stdout io.Writer) (*options, error) {
	i := 0
	for ; i < len(args) && args[i] != "--version"; i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break
		}
		if takesNext(a) {
			i++
		}
	}
	pre := min(i, len(args)) // args[:pre]: the flags before the subcommand (-t: i is past the end)
	if i < len(args) && args[i] == "--" {
		i++
	}
	if i >= len(args) {
		for _, a := range args[:pre] {
			if helpWord(a) {
				io.WriteString(stdout, helpText(""))
				return nil, errHelp
			}
		}
		return nil, &usageError{msg: "no subcommand"}
	}
	name := args[i]
	if name == "--version" {
		name = "version"
	}
	sc, ok := subcommands[name]
	if !ok {
		return nil, &usageError{msg: sprintf("unknown subcommand %q", name)}
	}
	o := &options{name: name, readyFD: -1}
	words := append(append(make([]string, 0, len(args)), args[:i]...), args[i+1:]...) // all but the subcommand
	rest, err := parseFlags(sc.flags, o, words)
	if err == errHelp {
		io.WriteString(stdout, helpText(name))
		return nil, errHelp
	}
	if err != nil {
		return nil, &usageError{msg: err.Error(), name: name}
	}
	o.args = rest
	if o.invert && o.match == nil { // inverting "every message" selects none
		return nil, &usageError{msg: "-v needs -m (it selects the messages -m does not match)", name: name}
	}
	if n := len(o.args); n < sc.minArgs || n > sc.maxArgs {
		what := "missing operand"
		switch {
		case n > sc.maxArgs:
			what = sprintf("extra operand %q", o.args[sc.maxArgs])
		case name == "broadcast" && n == 1:
			what = "missing MESSAGE (- sends the lines of stdin)"
		}
		return nil, &usageError{msg: what, name: name}
	}
	return o, nil
}

// takesNext reports whether the flag word a takes the next word as its
// value: -t, --t, -0t (parseFlag's reading, to find the subcommand).
func takesNext(a string) bool {
	if a[1] == '-' {
		return len(a) == 3 && strings.IndexByte(valueFlags, a[2]) >= 0
	}
	for k := 1; k < len(a) && a[k] != '='; k++ {
		if strings.IndexByte(valueFlags, a[k]) >= 0 {
			return k == len(a)-1
		}
	}
	return false
}

func helpWord(a string) bool {
	return a == "-h" || a == "--h" || a == "-help" || a == "--help"
}

// parseFlags sets in o the flags (of known, by letter) in args and returns
// the operands. It is not the flag package, which would bring fmt and
// reflect with it, a tenth of the binary.
func parseFlags(known string, o *options, args []string) ([]string, error) {
	var operands []string
	ended := false // by --
	for k := 0; k < len(args); k++ {
		a := args[k]
		switch {
		case ended || len(a) < 2 || a[0] != '-':
		case a == "--":
			ended = true
			continue
		case len(operands) > 0:
			if helpWord(a) {
				return nil, errHelp
			}
			if c := strings.TrimLeft(a, "-"); c != "" && strings.IndexByte(known, c[0]) >= 0 {
				return nil, errors.New("flag -" + c[:1] + " after PATH: flags go before PATH (-- before " + strconv.Quote(a) + " makes it an operand)")
			}
		case o.name == "chmod" && strings.Trim(a, "ugoa=+-") == "":
			// permissions, as the C tool takes them: bus chmod -o PATH
		default:
			used, err := parseFlag(known, o, a, args[k+1:])
			if err != nil {
				return nil, err
			}
			k += used
			continue
		}
		operands = append(operands, a)
	}
	return operands, nil
}

// parseFlag sets in o the flags of the word a, and returns how many of the
// words after it (next) it took as a value.
func parseFlag(known string, o *options, a string, next []string) (int, error) {
	group := a[1:]
	if a[1] == '-' { // --x or --x=V: one flag, as the flag package read it
		group = a[2:]
		name, _, _ := strings.Cut(group, "=")
		switch {
		case group[0] == '-' || group[0] == '=':
			return 0, errors.New("bad flag syntax: " + a)
		case name == "h" || name == "help":
			return 0, errHelp
		case len(name) != 1:
			return 0, errors.New("flag not known: -" + name)
		}
	}
	if group[0] == '=' {
		return 0, errors.New("bad flag syntax: " + a)
	}
	for k := 0; k < len(group); k++ {
		c, rest := group[k], group[k+1:]
		if c == 'h' {
			return 0, errHelp
		}
		if strings.IndexByte(known, c) < 0 {
			r, _ := utf8.DecodeRuneInString(group[k:])
			msg := "flag not known: -" + string(r)
			if len(group) > 1 && a[1] != '-' {
				msg += " (in " + a + ")"
			}
			return 0, errors.New(msg)
		}
		flag := "-" + group[k:k+1]
		if strings.IndexByte(valueFlags, c) >= 0 {
			used := 0
			if rest == "" {
				if len(next) == 0 {
					return 0, errors.New("flag needs an argument: " + flag)
				}
				rest, used = next[0], 1
			} else {
				rest = strings.TrimPrefix(rest, "=") // -t=1s, as the flag package read it
			}
			if err := setValueFlag(o, c, rest); err != nil {
				return 0, errors.New(flag + " " + strconv.Quote(rest) + ": " + err.Error())
			}
			return used, nil
		}
		on := true
		if rest != "" && rest[0] == '=' { // -x=false, as the flag package read it
			var err error
			if on, err = strconv.ParseBool(rest[1:]); err != nil {
				return 0, errors.New(flag + " " + strconv.Quote(rest[1:]) + ": not true or false")
			}
			k = len(group)
		}
		*o.switchFlag(c) = on
	}
	return 0, nil
}

// setValueFlag sets -t, -m or -r.
func setValueFlag(o *options, c byte, s string) (err error) {
	switch c {
	case 't':
		o.timeout, err = parseDuration(s)
	case 'm':
		o.match, err = regexp.Compile(s)
		if err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	case 'r':
		o.readyFD, err = parseFD(s)
	}
	return err
}

// parseDuration parses -t's DURATION: Go's (500ms, 1h30m) or seconds with
// an optional fraction, as timeout(1) takes them (5, 1.5).
func parseDuration(s string) (time.Duration, error) {
	if strings.Trim(s, "0123456789.") == "" {
		s += "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		// The same with every digit 0 parses: well formed, too long.
		zero := []byte(s)
		for k, c := range zero {
			if c > '0' && c <= '9' {
				zero[k] = '0'
			}
		}
		if _, err := time.ParseDuration(string(zero)); err == nil && strings.Trim(string(zero), "+-") != "0" {
			return 0, errors.New("out of range (at most 2562047h47m16.854775807s)")
		}
		return 0, errors.New("not a duration (try 1.5, 500ms, 2s, 1m)")
	}
	if d <= 0 {
		return 0, errors.New("the duration must be more than 0")
	}
	return d, nil
}

// parseFD parses -r's file descriptor and checks that it is open, and not
// one that bus needs itself.
func parseFD(s string) (int, error) {
	fd := 0
	if s == "" || len(s) > 9 {
		return -1, errors.New("not a file descriptor number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1, errors.New("not a file descriptor number")
		}
		fd = fd*10 + int(c-'0')
	}
	// Closed after the ready line, stdout would lose the messages (or the
	// commands' output), stderr the errors: 3>&1 signals on the same pipe.
	switch fd {
	case 1:
		return -1, errors.New("standard output carries the messages or the command's output (to signal on it: -r 3 3>&1)")
	case 2:
		return -1, errors.New("standard error carries bus's errors and timeouts (to signal on it: -r 3 3>&2)")
	}
	fl, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	switch {
	case e != 0:
		return -1, errors.New("not an open file descriptor")
	case fl&syscall.O_ACCMODE == syscall.O_RDONLY:
		// A supervisor would wait forever for a signal never written.
		return -1, errors.New("open for reading only (the ready signal is written to it)")
	}
	return fd, nil
}

func helpText(name string) string {
	if sc, ok := subcommands[name]; ok {
		return "usage: bus " + sc.synopsis + "\n\n" + sc.help + "\n"
	}
	var b strings.Builder
	b.WriteString("bus: broadcast short messages between processes on this machine\n\nusage:\n")
	for _, n := range order {
		b.WriteString("  bus " + subcommands[n].synopsis + "\n")
	}
	b.WriteString(`
Flags go before PATH, grouped or not (-n0, -t1s); -- ends them. DURATION is
seconds (5, 1.5) or Go's form (500ms, 2s, 1m, 1h30m).

Exit status: 0 done, 1 failed, 2 command line not understood, 124 timed out;
wait with COMMAND exits with the command's status.

Example, at a prompt (a script waits for the listener: -r):
  bus=$(bus create)
  bus listen "$bus" &
  bus broadcast "$bus" "$$ hello"
  bus remove "$bus"

'bus help SUBCOMMAND' tells more of one.
`)
	return b.String()
}

func synopsis(name string) string {
	if sc, ok := subcommands[name]; ok {
		return "usage: bus " + sc.synopsis
	}
	return "usage: bus SUBCOMMAND [ARGS]; subcommands: " + strings.Join(order, ", ") + "; see 'bus help'"
}

// parseMode parses chmod's PERMISSIONS into a function of the classes that
// are granted now (objMode bits). Octal: any bit of a class grants it.
// Letters: u, g, o (and a) with =, + and -, left to right, as if the string
// began with = (so "g" alone means the group only, "+o" adds others).
func parseMode(s string) (func(current uint32) uint32, error) {
	if s == "" {
		return nil, errors.New("empty permissions")
	}
	if strings.Trim(s, "01234567") == "" {
		if len(s) > 4 {
			return nil, errorf("permissions %q: octal mode too long", s)
		}
		var m uint32
		for _, c := range s {
			m = m<<3 | uint32(c-'0')
		}
		return func(uint32) uint32 { return m & 0o777 }, nil
	}
	if strings.Trim(s, "ugoa=+-") != "" {
		return nil, errorf("permissions %q: use octal (660) or u, g, o with =, + and - (ug, +o, u-g)", s)
	}
	// An operator that no class follows ("=", "u+", "g=-o") would change
	// nothing and still succeed.
	for i, c := range s {
		if strings.ContainsRune("=+-", c) && (i+1 == len(s) || strings.ContainsRune("=+-", rune(s[i+1]))) {
			return nil, errorf("permissions %q: %c must be followed by u, g, o or a", s, c)
		}
	}
	return func(current uint32) uint32 {
		m := current
		op, fresh := '=', true // fresh: the next letter under = starts from none
		for _, c := range s {
			var class uint32
			switch c {
			case '=', '+', '-':
				op, fresh = c, c == '='
				continue
			case 'u':
				class = 0o700
			case 'g':
				class = 0o070
			case 'o':
				class = 0o007
			case 'a':
				class = 0o777
			}
			switch op {
			case '=':
				if fresh {
					m, fresh = 0, false
				}
				m |= class
			case '+':
				m |= class
			case '-':
				m &^= class
			}
		}
		return m
	}, nil
}

// parseOwner parses OWNER[:GROUP] (or GROUP alone for chgrp) into ids, -1
// for a part not given.
func parseOwner(s string, groupOnly bool) (uid, gid int, err error) {
	user, group, hasGroup := s, "", false
	if groupOnly {
		user, group, hasGroup = "", s, true
	} else {
		user, group, hasGroup = strings.Cut(s, ":")
	}
	uid, gid = -1, -1
	if !groupOnly {
		if user == "" {
			return 0, 0, &usageError{msg: sprintf("owner %q: no user name", s), name: "chown"}
		}
		var ok bool
		if uid, ok = lookupID("/etc/passwd", user); !ok {
			return 0, 0, errorf("no such user %q (not in /etc/passwd)", user)
		}
	}
	if hasGroup {
		if group == "" {
			name := "chown"
			if groupOnly {
				name = "chgrp"
			}
			return 0, 0, &usageError{msg: sprintf("group %q: no group name", s), name: name}
		}
		var ok bool
		if gid, ok = lookupID("/etc/group", group); !ok {
			return 0, 0, errorf("no such group %q (not in /etc/group)", group)
		}
	}
	return uid, gid, nil
}
