// SPDX-License-Identifier: MIT

package proxy

import (
	"net"
	"net/http"
	"time"
)

// NewTransport is the transport to the providers.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through and the bytes back
		// untouched; never decompress on the client's behalf.
		DisableCompression: true,
		// Each upstream connection holds both buffers for as long as it
		// lives. A request is written once per use, and reads and writes
		// larger than a buffer bypass it (the answer's copy buffer is
		// 4 KiB): smaller buffers cost a few more syscalls on a long
		// header block, and save 5 KiB per open stream.
		WriteBufferSize: 1 << 10,
		ReadBufferSize:  2 << 10,
	}
}
