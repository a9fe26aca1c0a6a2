package main

// bus5_test.go: the semop groups that bus.5 lists are proto.go's tables
// (opJoin, opReleased, ...), so that the page a peer implements from and
// the code cannot drift. In bus.5, a line "name: { ... }" in an .EX block
// is the table op+Name (the words capitalized and joined, hyphens dropped:
// "count out" is opCountOut, "re-arm" opRearm), with the same operations in
// the same order and the same flags (UNDO, NOWAIT written out); every table
// in proto.go has such a line; and every other group anywhere in the page
// is one of the tables, but for the few in bus5Foreign (other programs'
// calls, which the page says are). The tables are read off proto.go's
// source, so a new one cannot be left out of the page. TestBus5GroupsCheck
// shows that the comparison fails for altered groups.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// bus5Foreign are the groups bus.5 may write that are no table of proto.go,
// in canonical form (formatGroup), and why.
var bus5Foreign = map[string]string{
	"{ N 0 }":                             "an older listener's wait for N in a call of its own",
	"{ S +1 UNDO, Q +1 UNDO, W -1 UNDO }": "an older listener's re-arm after its own { N 0 }",
}

func TestBus5Groups(t *testing.T) {
	page, tables := bus5Inputs(t)
	problems := compareBus5(page, tables)
	for _, p := range problems {
		t.Error("bus.5 and proto.go: " + p)
	}
	if len(problems) == 0 {
		names := make([]string, 0, len(tables))
		for n := range tables {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("bus.5 lists all %d tables of proto.go alike: %v", len(tables), names)
	}
}

// TestBus5GroupsCheck: the comparison catches a group altered in the page
// (order, a flag moved or dropped, an operation changed, a line removed,
// one added, a group split over two lines) or a table added in proto.go.
func TestBus5GroupsCheck(t *testing.T) {
	page, tables := bus5Inputs(t)
	if p := compareBus5(page, tables); len(p) > 0 {
		t.Fatalf("the page and the tables differ already (TestBus5Groups): %v", p)
	}
	for _, c := range []struct {
		what, old, new, want string
	}{
		{"join's operations reordered", "join:      { X \\-1, X +1,", "join:      { X +1, X \\-1,", "opJoin"},
		{"take nowait's NOWAIT moved to W 0", "{ X \\-1 UNDO NOWAIT, W 0 }", "{ X \\-1 UNDO, W 0 NOWAIT }", "opTakeNowait"},
		{"re-arm's last UNDO dropped", "Q +1 UNDO, W \\-1 UNDO }", "Q +1 UNDO, W \\-1 }", "opRearm"},
		{"finish now without NOWAIT", "{ S 0 NOWAIT, N", "{ S 0, N", "opFinishNow"},
		{"publish's gate with UNDO", "{ W 0, Q +1, N +1 UNDO }", "{ W 0, Q +1 UNDO, N +1 UNDO }", "opPublish"},
		{"give up's line removed", "give up:      { N \\-1 UNDO, X +1 UNDO }\n", "", "opGiveUp"},
		{"a group in prose altered", ".BR \"{ S \\-1 UNDO }\" ,", ".BR \"{ S \\-1 }\" ,", "{ S -1 }"},
		{"a line naming no table", "drop W:    { W \\-1 UNDO }\n", "drop W:    { W \\-1 UNDO }\nnudge:     { Q 0 }\n", "opNudge"},
		{"a group over two lines", "leave:     { S \\-1 UNDO, W \\-1 UNDO }\n", "leave:     { S \\-1 UNDO,\nW \\-1 UNDO }\n", "over two lines"},
		{"an operation misspelt", "drop W:    { W \\-1 UNDO }", "drop W:    { W \\-1 UNDOO }", "UNDOO"},
	} {
		if !strings.Contains(page, c.old) {
			t.Errorf("%s: bus.5 has no %q to alter", c.what, c.old)
			continue
		}
		altered := strings.Replace(page, c.old, c.new, 1)
		p := compareBus5(altered, tables)
		if i := slices.IndexFunc(p, func(s string) bool { return strings.Contains(s, c.want) }); i < 0 {
			t.Errorf("%s: the comparison reports %q, nothing about %s", c.what, p, c.want)
		} else {
			t.Logf("%s: %s", c.what, p[i])
		}
	}
	more := map[string][]sembuf{"opExtra": {{semQ, 1, 0}}}
	for n, ops := range tables {
		more[n] = ops
	}
	if p := compareBus5(page, more); !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, "opExtra") }) {
		t.Errorf("a table added in proto.go: the comparison reports %q, nothing about opExtra", p)
	}
}

func bus5Inputs(t *testing.T) (string, map[string][]sembuf) {
	t.Helper()
	data, err := os.ReadFile("bus.5")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := protoTables("proto.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("found %d tables of semop groups in proto.go (%v): has their shape changed?", len(tables), tables)
	}
	// The source reading is the live tables (a sample covering negative,
	// zero, UNDO, NOWAIT and both).
	for name, live := range map[string][]sembuf{"opJoin": opJoin, "opTakeNowait": opTakeNowait, "opFinishNow": opFinishNow, "opPublish": opPublish} {
		if !slices.Equal(tables[name], live) {
			t.Fatalf("proto.go's %s read as %s, but it is %s", name, formatGroup(tables[name]), formatGroup(live))
		}
	}
	return string(data), tables
}

// protoTables reads the package variables of file whose value is a
// []sembuf literal, evaluating each operation's three fields.
func protoTables(file string) (map[string][]sembuf, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		return nil, err
	}
	consts := map[string]int64{"semS": semS, "semW": semW, "semX": semX, "semQ": semQ, "semN": semN, "semUndo": semUndo, "ipcNowait": ipcNowait}
	var eval func(ast.Expr) (int64, error)
	eval = func(e ast.Expr) (int64, error) {
		switch e := e.(type) {
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return v, nil
			}
		case *ast.BasicLit:
			if e.Kind == token.INT {
				return strconv.ParseInt(e.Value, 0, 64)
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.UnaryExpr:
			if v, err := eval(e.X); err == nil && e.Op == token.SUB {
				return -v, nil
			}
		case *ast.BinaryExpr:
			a, err1 := eval(e.X)
			b, err2 := eval(e.Y)
			if err1 == nil && err2 == nil && e.Op == token.OR {
				return a | b, nil
			}
		}
		return 0, fmt.Errorf("cannot evaluate %T in a sembuf (a constant the test does not know?)", e)
	}
	tables := map[string][]sembuf{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.CompositeLit)
				if !ok {
					continue
				}
				arr, ok := lit.Type.(*ast.ArrayType)
				if !ok || arr.Len != nil {
					continue
				}
				if elt, ok := arr.Elt.(*ast.Ident); !ok || elt.Name != "sembuf" {
					continue
				}
				var ops []sembuf
				for _, el := range lit.Elts {
					op, ok := el.(*ast.CompositeLit)
					if !ok || len(op.Elts) != 3 {
						return nil, fmt.Errorf("%s: an operation that is not {num, op, flg}", name.Name)
					}
					var v [3]int64
					for j := range v {
						if v[j], err = eval(op.Elts[j]); err != nil {
							return nil, fmt.Errorf("%s: %v", name.Name, err)
						}
					}
					ops = append(ops, sembuf{uint16(v[0]), int16(v[1]), int16(v[2])})
				}
				tables[name.Name] = ops
			}
		}
	}
	return tables, nil
}

var (
	bus5GroupRE = lazyRE(`\{[^{}]*\}`)
	bus5LabelRE = lazyRE(`^\s*([A-Za-z][A-Za-z -]*[A-Za-z]):\s*\{`)
	bus5OpRE    = lazyRE(`^([SWXQN]) (0|[+-][1-9][0-9]*)((?: [A-Z]+)*)$`)
)

// compareBus5 lists how the groups of page (bus.5's source) and tables
// differ; nothing if they agree.
func compareBus5(page string, tables map[string][]sembuf) []string {
	var problems []string
	seen := map[string]bool{}
	inEX := false
	for i, line := range strings.Split(page, "\n") {
		at := fmt.Sprintf("line %d", i+1)
		switch {
		case strings.HasPrefix(line, `.\"`):
			continue
		case line == ".EX":
			inEX = true
		case line == ".EE":
			inEX = false
		}
		text := manText(line)
		groups := bus5GroupRE().FindAllStringIndex(text, -1)
		if strings.Count(text, "{") != len(groups) || strings.Count(text, "}") != len(groups) {
			problems = append(problems, fmt.Sprintf("%s: a group over two lines, or a stray brace: %q", at, text))
			continue
		}
		label := ""
		if m := bus5LabelRE().FindStringSubmatch(text); inEX && m != nil {
			label = m[1]
		}
		for j, g := range groups {
			body := strings.TrimSpace(text[g[0]+1 : g[1]-1])
			if body == "..." {
				continue // the notation's placeholder
			}
			ops, err := parseGroup(body)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", at, err))
				continue
			}
			if j == 0 && label != "" {
				name := tableName(label)
				want, ok := tables[name]
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("%s: %q names %s, which proto.go does not have", at, label, name))
				case !slices.Equal(ops, want):
					problems = append(problems, fmt.Sprintf("%s: %q is %s, but proto.go's %s is %s", at, label, formatGroup(ops), name, formatGroup(want)))
				}
				seen[name] = true
				continue
			}
			found := false
			for _, want := range tables {
				found = found || slices.Equal(ops, want)
			}
			if _, ok := bus5Foreign[formatGroup(ops)]; !found && !ok {
				problems = append(problems, fmt.Sprintf("%s: %s is none of proto.go's tables (nor one of bus5Foreign)", at, formatGroup(ops)))
			}
		}
	}
	var missing []string
	for name := range tables {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		problems = append(problems, fmt.Sprintf("proto.go's %s %s is in no line \"name: { ... }\" of an .EX block", name, formatGroup(tables[name])))
	}
	return problems
}

// tableName is the table a label names: "count out" is opCountOut,
// "re-arm" opRearm, "drop W" opDropW.
func tableName(label string) string {
	name := "op"
	for _, w := range strings.Fields(strings.ReplaceAll(label, "-", "")) {
		name += strings.ToUpper(w[:1]) + strings.ToLower(w[1:])
	}
	return name
}

// parseGroup reads the operations of a group: "X -1 UNDO, W 0".
func parseGroup(body string) ([]sembuf, error) {
	var ops []sembuf
	for _, op := range strings.Split(body, ",") {
		op = strings.TrimSpace(op)
		m := bus5OpRE().FindStringSubmatch(op)
		if m == nil {
			return nil, fmt.Errorf("%q in { %s } is not an operation (A 0, A +1 or A -1, then UNDO or NOWAIT)", op, body)
		}
		v, _ := strconv.Atoi(m[2])
		o := sembuf{uint16(strings.Index("SWXQN", m[1])), int16(v), 0}
		for _, f := range strings.Fields(m[3]) {
			bit := map[string]int16{"UNDO": semUndo, "NOWAIT": ipcNowait}[f]
			if bit == 0 || o.flg&bit != 0 {
				return nil, fmt.Errorf("flag %s of %q in { %s }: unknown or twice", f, op, body)
			}
			o.flg |= bit
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// formatGroup writes ops as bus.5 does, flags in a fixed order.
func formatGroup(ops []sembuf) string {
	parts := make([]string, len(ops))
	for i, o := range ops {
		if o.num >= nsems {
			parts[i] = fmt.Sprintf("semaphore %d?", o.num)
			continue
		}
		s := fmt.Sprintf("%c %+d", "SWXQN"[o.num], o.op)
		if o.op == 0 {
			s = fmt.Sprintf("%c 0", "SWXQN"[o.num])
		}
		if o.flg&semUndo != 0 {
			s += " UNDO"
		}
		if o.flg&ipcNowait != 0 {
			s += " NOWAIT"
		}
		if o.flg&^(semUndo|ipcNowait) != 0 {
			s += fmt.Sprintf(" flags %#o", o.flg&^(semUndo|ipcNowait))
		}
		parts[i] = s
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}
