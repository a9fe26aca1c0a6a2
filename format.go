package main

// The hand-written formatting: fmt's Sprintf, Errorf and Fprintf for the
// verbs bus uses, errors.As for one type, and ls's rendering of a mode.
// fmt, and the reflect it brings, would be a tenth of the binary. The
// floor below every other file but the system calls: nothing here calls up.

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// sprintf is fmt.Sprintf for the verbs bus uses: %s %v %d %q %c %x %w and a
// zero-padded width (%08x). fmt, and the reflect it brings, would be a
// tenth of the binary, which must fit a router's flash in 2 MiB.
func sprintf(format string, args ...any) string {
	var b []byte
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b = append(b, format[i])
			continue
		}
		i++
		zero, width := false, 0
		for ; i+1 < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
			zero = zero || (width == 0 && format[i] == '0')
			width = width*10 + int(format[i]-'0')
		}
		verb := format[i]
		if verb == '%' {
			b = append(b, '%')
			continue
		}
		var arg any = "%!" + string(verb) + "(MISSING)"
		if len(args) > 0 {
			arg, args = args[0], args[1:]
		}
		var s string
		switch verb {
		case 'd':
			s = intString(arg, 10)
		case 'x':
			s = intString(arg, 16)
		case 'c':
			if r, ok := arg.(rune); ok {
				s = string(r)
			} else {
				s = string(rune(arg.(byte)))
			}
		case 'q':
			s = strconv.Quote(argString(arg))
		default: // s, v, w
			s = argString(arg)
		}
		pad := byte(' ')
		if zero {
			pad = '0'
		}
		for n := utf8.RuneCountInString(s); n < width; n++ {
			b = append(b, pad)
		}
		b = append(b, s...)
	}
	return string(b)
}

func argString(arg any) string {
	switch a := arg.(type) {
	case string:
		return a
	case error:
		return a.Error()
	case time.Duration: // not any Stringer: that would keep time.Time's
		return a.String() // formatting and time zones in the binary
	case nil:
		return "<nil>"
	}
	return intString(arg, 10)
}

func intString(arg any, base int) string {
	switch a := arg.(type) {
	case int:
		return strconv.FormatInt(int64(a), base)
	case int32:
		return strconv.FormatInt(int64(a), base)
	case int64:
		return strconv.FormatInt(a, base)
	case uint16:
		return strconv.FormatUint(uint64(a), base)
	case uint32:
		return strconv.FormatUint(uint64(a), base)
	case uint64:
		return strconv.FormatUint(a, base)
	}
	panic("sprintf: unexpected argument")
}

// wrapError is what fmt.Errorf makes of a %w.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

// errorf is fmt.Errorf: with a %w, the error wraps that argument.
func errorf(format string, args ...any) error {
	msg := sprintf(format, args...)
	if i := strings.Index(format, "%w"); i >= 0 {
		n := strings.Count(format[:i], "%") - 2*strings.Count(format[:i], "%%")
		if err, ok := args[n].(error); ok {
			return &wrapError{msg, err}
		}
	}
	return errors.New(msg)
}

func fprintf(w io.Writer, format string, args ...any) {
	io.WriteString(w, sprintf(format, args...))
}

// as is errors.As for one type, along a chain of Unwrap() error: enough
// for bus's errors, without errors.As's reflection.
func as[T error](err error) (T, bool) {
	for err != nil {
		if t, ok := err.(T); ok {
			return t, true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	var zero T
	return zero, false
}

// modeString is ls's rendering of a mode's permission and sticky bits.
func modeString(m uint32) string {
	const rwx = "rwxrwxrwx"
	b := []byte("---------")
	for i := range b {
		if m&(1<<(8-i)) != 0 {
			b[i] = rwx[i]
		}
	}
	if m&syscall.S_ISVTX != 0 {
		b[8] = "Tt"[m&1]
	}
	return string(b)
}
