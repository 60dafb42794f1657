// SPDX-License-Identifier: MIT

package daemon

import (
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/llmkey/llmkey/daemon/promtext"
)

// processMetrics are the usual go_* and process_* series, under the
// names the official client gives them, so that dashboards built for
// any Go service read them. What differs by OS is in process_$GOOS.go;
// a series an OS cannot give is left out.
func processMetrics(r *promtext.Registry) {
	start := float64(time.Now().UnixNano()) / 1e9
	gauge := func(name, help string, read func() (float64, bool)) {
		r.Func(name, help, promtext.GaugeType, nil, func(emit func(float64, ...string)) {
			if v, ok := read(); ok {
				emit(v)
			}
		})
	}
	gauge("go_goroutines", "Number of goroutines that currently exist.", func() (float64, bool) {
		return float64(runtime.NumGoroutine()), true
	})
	gauge("go_threads", "Number of OS threads created.", func() (float64, bool) {
		return float64(pprof.Lookup("threadcreate").Count()), true
	})
	var ms runtime.MemStats // read once a scrape
	r.BeforeScrape(func() { runtime.ReadMemStats(&ms) })
	memstat := func(name, help string, v func() uint64) {
		gauge(name, help, func() (float64, bool) { return float64(v()), true })
	}
	memstat("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", func() uint64 { return ms.HeapAlloc })
	memstat("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", func() uint64 { return ms.HeapInuse })
	memstat("go_memstats_sys_bytes", "Number of bytes obtained from system.", func() uint64 { return ms.Sys })
	r.Func("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", promtext.CounterType, nil,
		func(emit func(float64, ...string)) {
			var ru syscall.Rusage
			if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
				emit(float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9)
			}
		})
	gauge("process_open_fds", "Number of open file descriptors.", openFDs)
	gauge("process_resident_memory_bytes", "Resident memory size in bytes.", residentBytes)
	gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", func() (float64, bool) { return start, true })
}
