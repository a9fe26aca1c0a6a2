// The least a Go listener that runs commands can hold: the packages bus's
// command line cannot do without (regexp for -m, time for -t, os, strconv,
// syscall) and bus's runner reduced to its shape (ForkExec per message with
// the same collector settings, one goroutine reaping with wait4(-1)), with
// no bus. BenchmarkFootprint builds it and reads its resident memory.
//
// Usage: runner N REGEXP DURATION: N starts of /bin/true, then a newline on
// stdout, then it holds until stdin ends.
package main

import (
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	re := regexp.MustCompile(os.Args[2])
	if _, err := time.ParseDuration(os.Args[3]); err != nil {
		os.Exit(2)
	}
	debug.SetGCPercent(10)
	attr := &syscall.ProcAttr{Env: append(os.Environ(), ""), Files: []uintptr{^uintptr(0), 1, 2}}
	started := make(chan struct{}, 1024)
	go func() {
		for range started {
			syscall.Wait4(-1, nil, 0, nil)
		}
	}()
	for i := range n {
		msg := "0 footprint " + strconv.Itoa(i)
		if !re.MatchString(msg) {
			continue
		}
		attr.Env[len(attr.Env)-1] = "msg=" + msg
		if _, err := syscall.ForkExec("/bin/true", []string{"true"}, attr); err == nil {
			started <- struct{}{}
		}
		if i%16 == 15 {
			debug.FreeOSMemory()
		}
	}
	os.Stdout.Write([]byte("\n"))
	var b [1]byte
	os.Stdin.Read(b[:])
}
