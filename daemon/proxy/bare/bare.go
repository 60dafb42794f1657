// SPDX-License-Identifier: MIT

// Package bare is the floor the benchmarks hold the proxy to: a bare
// httputil.ReverseProxy that swaps the key and does nothing else. Only
// benchmarks import it; it is not linked into llmkey.
package bare

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Proxy is the floor the benchmarks hold the proxy to:
// httputil.ReverseProxy that sends /openai/REST to upstream's /v1/REST
// with auth in place of the client's Authorization, and does nothing
// else. Give it the proxy's own transport (proxy.NewTransport); its copy
// buffers are pooled as the proxy's are: with the defaults (2 idle
// connections per host, 32 KiB allocated per request) it would be a
// strawman.
func Proxy(upstream *url.URL, auth string, transport http.RoundTripper) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.URL.Path = "/v1" + strings.TrimPrefix(r.In.URL.Path, "/openai")
			r.Out.Header.Set("Authorization", auth)
		},
		FlushInterval: -1,
		Transport:     transport,
		BufferPool:    &bufferPool{},
	}
}

// bufferPool is httputil.BufferPool on a sync.Pool.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }
