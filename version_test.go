package main

// bus version and bus --version: the version from the build information,
// read from the executable as runtime/debug reads it (without its fmt).

import (
	"runtime/debug"
	"testing"
)

func TestVersionWords(t *testing.T) {
	const rev = "build\tvcs=git\nbuild\tvcs.revision=0123456789abcdef0123456789abcdef01234567\nbuild\tvcs.time=2026-11-30T01:56:19Z\n"
	for _, c := range []struct{ info, want string }{
		{"path\tbus\nmod\tbus\tv1.2.3\t\n" + rev + "build\tvcs.modified=false\n", "v1.2.3"},
		{"path\tbus\nmod\tbus\tv0.0.0-20261130015619-0123456789ab+dirty\t\n" + rev + "build\tvcs.modified=true\n", "v0.0.0-20261130015619-0123456789ab+dirty"},
		{"path\tbus\nmod\tbus\t(devel)\t\n" + rev + "build\tvcs.modified=true\n", "0123456789ab+dirty (2026-11-30T01:56:19Z)"},
		{"path\tbus\nmod\tbus\t(devel)\t\n" + rev + "build\tvcs.modified=false\n", "0123456789ab (2026-11-30T01:56:19Z)"},
		{"path\tbus\nmod\tbus\t\t\nbuild\tvcs.revision=abc\n", "abc"},
		{"path\tbus\nmod\tbus\t(devel)\t\nbuild\t-trimpath=true\n", "devel"},
		{"", "devel"},
	} {
		if got := version(c.info); got != c.want {
			t.Errorf("version(%q) = %q, want %q", c.info, got, c.want)
		}
	}
}

// TestVersion: buildInfo finds in the executable what runtime/debug
// reads, and bus version prints the version from it.
func TestVersion(t *testing.T) {
	info := buildInfo()
	want, ok := debug.ReadBuildInfo()
	if !ok || info == "" {
		t.Fatalf("no build information: runtime/debug %v, read from the executable %q", ok, info)
	}
	got, err := debug.ParseBuildInfo(info)
	if err != nil {
		t.Fatalf("the build information read from the executable does not parse: %v\n%q", err, info)
	}
	got.GoVersion = want.GoVersion // not in the text: runtime/debug adds it
	if got.String() != want.String() {
		t.Fatalf("read from the executable:\n%s\nruntime/debug reads:\n%s", got, want)
	}
	line := "bus " + version(info) + "\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := bus(t, "", args...)
		r.expect(t, 0, "")
		if r.stdout != line {
			t.Errorf("bus %q printed %q, want %q", args, r.stdout, line)
		}
	}
	bus(t, "", "version", "x").expect(t, 2, `extra operand "x"`)
}
