package main

// Manual pages: every subcommand and flag that `bus help` and `bus help
// SUBCOMMAND` list is documented in bus.1 (a flag in its subcommand's
// section, or among the flags common to all), read off the help rather than
// a list kept here, so flags added later are checked as they land; and
// mandoc -Tlint -Wwarning has nothing to say about bus.1 and bus.5.

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestManPageCoversHelp(t *testing.T) {
	page, err := os.ReadFile("bus.1")
	if err != nil {
		t.Fatal(err)
	}
	r := bus(t, "", "help")
	r.expect(t, 0, "")
	subs, flags := parseHelp(r.stdout)
	if len(subs) < 5 {
		t.Fatalf("found %d subcommands in `bus help` (%v): has its usage block changed shape?\n%s", len(subs), subs, r.stdout)
	}
	global := flags[""]
	nflags := 0
	for _, name := range subs {
		r := bus(t, "", "help", name)
		r.expect(t, 0, "")
		if !strings.HasPrefix(r.stdout, "usage: bus "+name) {
			t.Fatalf("`bus help %s` does not start with its usage: %q", name, r.stdout)
		}
		_, own := parseHelp(r.stdout)
		for _, f := range append(own[name], own[""]...) {
			if !slices.Contains(flags[name], f) {
				flags[name] = append(flags[name], f)
			}
		}
		nflags += len(flags[name])
	}
	if nflags < 5 {
		t.Fatalf("found %d flags in the subcommands' help (%v): has its shape changed?", nflags, flags)
	}
	t.Logf("from the help: subcommands %v, top-level flags %v, flags %v", subs, global, flags)
	for _, m := range manMissing(string(page), subs, global, flags) {
		t.Error("bus.1: " + m)
	}

	// The check can fail: a page that lacks the section of a subcommand
	// with flags, or whose section is only its heading, is caught.
	for _, name := range subs {
		if len(flags[name]) == 0 {
			continue
		}
		sections := manSections(string(page))
		s, ok := sections[name]
		if !ok {
			break // reported above
		}
		cut := strings.Replace(string(page), s, "", 1)
		if m := manMissing(cut, subs, global, flags); len(m) < len(flags[name]) {
			t.Errorf("a page without the section of %s misses only %v", name, m)
		}
		emptied := strings.Replace(string(page), s, ".SS "+name+"\n", 1)
		if m := manMissing(emptied, subs, global, flags); len(m) < len(flags[name]) {
			t.Errorf("a page whose section of %s is empty misses only %v", name, m)
		}
		break
	}
}

// helpFlag is a flag in a usage line or at the head of an option line.
var helpFlag = lazyRE(`^(-[A-Za-z0-9]+|--[A-Za-z][A-Za-z0-9-]*)$`)

// parseHelp reads help text: the subcommands of its usage lines ("bus NAME
// ...", in the block that starts with a line beginning "usage:" and ends at
// a blank line) and the flags in each, under its NAME; and the flags of
// usage lines without a subcommand ("bus --version") and at the head of
// option lines (an indented line starting with a flag: "  -t DURATION ...",
// "  -h, --help ..."), under "". Grouped letters in a usage line ([-n0])
// count each.
func parseHelp(text string) (subs []string, flags map[string][]string) {
	flags = map[string][]string{}
	seen := map[string]bool{}
	addFlag := func(name, tok string, group bool) {
		tok = strings.Trim(tok, "[]|(),.:;")
		if k, _, ok := strings.Cut(tok, "="); ok {
			tok = k
		}
		if !helpFlag().MatchString(tok) {
			return
		}
		toks := []string{tok}
		if group && !strings.HasPrefix(tok, "--") && len(tok) > 2 {
			toks = nil
			for _, c := range tok[1:] {
				toks = append(toks, "-"+string(c))
			}
		}
		for _, f := range toks {
			if !seen[name+" "+f] {
				seen[name+" "+f] = true
				flags[name] = append(flags[name], f)
			}
		}
	}
	inUsage := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(line, "usage:") {
			inUsage = true
			trimmed = strings.TrimSpace(strings.TrimPrefix(line, "usage:"))
		} else if trimmed == "" {
			inUsage = false
		}
		f := strings.Fields(trimmed)
		switch {
		case inUsage && len(f) >= 2 && f[0] == "bus":
			name := ""
			if !strings.HasPrefix(f[1], "-") {
				name = f[1]
				if !seen[name] {
					seen[name] = true
					subs = append(subs, name)
				}
			}
			for _, tok := range f[1:] {
				addFlag(name, tok, true)
			}
		case !inUsage && len(f) > 0 && line != trimmed && strings.HasPrefix(trimmed, "-"):
			for _, tok := range strings.Split(f[0], ",") {
				addFlag("", tok, false)
			}
			if strings.HasSuffix(f[0], ",") && len(f) > 1 { // "-h, --help"
				addFlag("", f[1], false)
			}
		}
	}
	return subs, flags
}

// manText undoes the roff escapes that the pages use in names and flags.
func manText(s string) string {
	return strings.NewReplacer(`\-`, "-", `\fB`, "", `\fI`, "", `\fR`, "", `\fP`, "", `\&`, "", `\%`, "", `"`, "").Replace(s)
}

// manSections maps each subcommand section of bus.1 (".SS NAME") to its
// source, from its heading to the next heading.
func manSections(page string) map[string]string {
	out := map[string]string{}
	lines := strings.SplitAfter(page, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], ".SS ") {
			continue
		}
		f := strings.Fields(manText(lines[i][4:]))
		if len(f) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString(lines[i])
		for i+1 < len(lines) && !strings.HasPrefix(lines[i+1], ".SS") && !strings.HasPrefix(lines[i+1], ".SH") {
			i++
			b.WriteString(lines[i])
		}
		out[f[0]] = b.String()
	}
	return out
}

// manSection returns the source of the .SH section named name.
func manSection(page, name string) string {
	_, rest, ok := strings.Cut(page, "\n.SH "+name+"\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\n.SH ")
	return body
}

// manMissing lists what help lists and the page does not document: a
// subcommand without its section or its synopsis line, a subcommand's flag
// not in its section, a flag of the top-level help nowhere. A flag common
// to most subcommands (in the help of more than half of them, or in the
// top-level help: -h, say) may be documented once, in DESCRIPTION, instead.
func manMissing(page string, subs, global []string, flags map[string][]string) []string {
	count := map[string]int{}
	for _, fs := range flags {
		for _, f := range fs {
			count[f]++
		}
	}
	for _, f := range global {
		count[f] += len(subs)
	}
	has := func(text, word string) bool {
		re := regexp.MustCompile(`(^|[^A-Za-z0-9-])` + regexp.QuoteMeta(word) + `($|[^A-Za-z0-9-])`)
		return re.MatchString(manText(text))
	}
	sections := manSections(page)
	synopsis := manSection(page, "SYNOPSIS")
	common := manSection(page, "DESCRIPTION")
	var missing []string
	for _, name := range subs {
		if !has(synopsis, "bus "+name) {
			missing = append(missing, "SYNOPSIS lacks bus "+name)
		}
		s, ok := sections[name]
		if !ok {
			missing = append(missing, "no section .SS "+name)
		}
		for _, f := range flags[name] {
			if !has(s, f) && !(2*count[f] > len(subs) && has(common, f)) {
				missing = append(missing, name+" "+f+" is not documented in its section")
			}
		}
	}
	for _, f := range global {
		if !has(page, f) {
			missing = append(missing, "flag "+f+" of `bus help` is nowhere")
		}
	}
	return missing
}

func TestManPagesLint(t *testing.T) {
	mandoc, err := exec.LookPath("mandoc")
	if err != nil {
		t.Fatal("mandoc is needed to check the manual pages: apt-get install -y mandoc")
	}
	var out bytes.Buffer
	cmd := exec.Command(mandoc, "-Tlint", "-Wwarning", "bus.1", "bus.5")
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || out.Len() > 0 {
		t.Fatalf("mandoc -Tlint -Wwarning bus.1 bus.5: %v\n%s", err, out.String())
	}
}

// TestParseHelp: the help's parser reads the shapes the help may take as
// flags are added (grouped letters, long flags, a usage line without a
// subcommand, "-h, --help" option lines), and not examples or prose.
func TestParseHelp(t *testing.T) {
	top := `bus: broadcast short messages

usage:
  bus create [-x] [PATH]
  bus broadcast [-n0] [-t DURATION] PATH MESSAGE
  bus --version

  -h, --help  show this help

Example:
  bus listen -q "$bus" &
`
	subs, flags := parseHelp(top)
	if want := []string{"create", "broadcast"}; !slices.Equal(subs, want) {
		t.Errorf("subcommands %v, want %v", subs, want)
	}
	for name, want := range map[string][]string{
		"create":    {"-x"},
		"broadcast": {"-n", "-0", "-t"},
		"":          {"--version", "-h", "--help"},
	} {
		if !slices.Equal(flags[name], want) {
			t.Errorf("flags of %q: %v, want %v", name, flags[name], want)
		}
	}
	sub := `usage: bus listen [-t DURATION] [-v] PATH [COMMAND]

Receive every message.
-m is for later.

  -t DURATION  stop after DURATION
  -v           select the messages -m does not match
  --  ends the flags
`
	subs, flags = parseHelp(sub)
	if !slices.Equal(subs, []string{"listen"}) || !slices.Equal(flags["listen"], []string{"-t", "-v"}) || !slices.Equal(flags[""], []string{"-t", "-v"}) {
		t.Errorf("listen's help: subcommands %v, flags %v", subs, flags)
	}
}
