// SPDX-License-Identifier: MIT

package daemon

import (
	"os"
	"strconv"
	"strings"
)

// openFDs counts the entries of /proc/self/fd.
func openFDs() (float64, bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	return float64(len(ents) - 1), err == nil // less the one ReadDir holds
}

// residentBytes is the second field of /proc/self/statm, in pages.
func residentBytes() (float64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	return float64(pages) * float64(os.Getpagesize()), err == nil
}
