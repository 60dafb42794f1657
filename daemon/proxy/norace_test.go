// SPDX-License-Identifier: MIT

//go:build !race

package proxy

const raceEnabled = false
