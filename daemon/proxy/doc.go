// SPDX-License-Identifier: MIT

// Package proxy is the request path: a request for /PROVIDER/REST is
// admitted (loopback host, no foreign origin, the local token, not
// draining, within the in-flight cap and the body limit), sent upstream on
// a key its provider's pool chooses and, while rotate.Decide says so,
// sent again on another key or held for one to free; a success streams
// back untouched and is counted, a failure is answered with the
// provider's own error or llmkey's (answers.go).
//
// The request it sends upstream is built from a copy of the client's
// headers: the real key never enters the client's *http.Request. What
// differs between providers is the wire package's; which key serves is
// rotate's. The daemon builds the Snapshot each request reads.
package proxy
