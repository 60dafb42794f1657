package daemon

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// BareProxy is the floor the benchmarks hold the proxy to:
// httputil.ReverseProxy that sends /openai/REST to upstream's /v1/REST
// with auth in place of the client's Authorization, and does nothing
// else. It has the proxy's own transport and pooled copy buffers: with
// the defaults (2 idle connections per host, 32 KiB allocated per
// request) it would be a strawman. Only the benchmarks call it.
func BareProxy(upstream *url.URL, auth string) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.URL.Path = "/v1" + strings.TrimPrefix(r.In.URL.Path, "/openai")
			r.Out.Header.Set("Authorization", auth)
		},
		FlushInterval: -1,
		Transport:     newTransport(),
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
