package state

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// publicPrefixes are the fixed prefixes providers put on their keys. They
// say which kind of key it is and nothing about the key itself, so showing
// them helps a person tell keys apart without weakening any.
var publicPrefixes = []string{
	"sk-ant-api03-", "sk-ant-admin01-", "sk-ant-", "sk-proj-", "sk-svcacct-", "sk-or-v1-",
	"sk-", "gsk_", "xai-", "AIza",
}

// Mask renders a secret for display: its public prefix, an ellipsis, and
// the last four characters when the secret is long enough that four
// characters leave plenty unknown (sk-…abcd).
func Mask(secret string) string {
	prefix := ""
	for _, p := range publicPrefixes {
		if strings.HasPrefix(secret, p) {
			prefix = p
			break
		}
	}
	rest := secret[len(prefix):]
	if len(rest) < 16 {
		return prefix + "…"
	}
	return prefix + "…" + rest[len(rest)-4:]
}

// Fingerprint is a short, stable, non-reversible name for a secret: the
// first 12 hex digits of its SHA-256. State files and logs use it to tell
// two keys with the same name apart over time (a key replaced in place).
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:6])
}
