// SPDX-License-Identifier: MIT

package secrets

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// excerptLen is the most of a failing command's standard error shown.
const excerptLen = 120

// masked stands in for what looks like a secret.
const masked = "[masked]"

// excerpt is what is shown of a failing command's standard error: its
// first line that says something, every known secret and every word that
// looks like one masked, cut to excerptLen characters.
func excerpt(stderr []byte, known []string) string {
	var line string
	for l := range strings.Lines(strings.ToValidUTF8(string(stderr), "?")) {
		if line = strings.TrimSpace(l); line != "" {
			break
		}
	}
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || !unicode.IsPrint(r) && r != ' ' {
			return ' '
		}
		return r
	}, line)
	line = Mask(line, known)
	if utf8.RuneCountInString(line) > excerptLen {
		line = strings.TrimRight(string([]rune(line)[:excerptLen]), " ") + "…"
	}
	return line
}

// Mask is s with every known secret, and every word that looks like a
// secret, replaced by [masked]. A word is a run of the characters keys
// are made of; it looks like a secret when it is long and mixes letters
// and digits, or is longer than words and paths' parts are.
func Mask(s string, known []string) string {
	for _, k := range known {
		if len(k) >= 8 {
			s = strings.ReplaceAll(s, k, masked)
		}
	}
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexFunc(s, keyChar)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return !keyChar(r) })
		if j < 0 {
			j = len(s)
		}
		if word := s[:j]; secretLike(word) {
			b.WriteString(masked)
		} else {
			b.WriteString(word)
		}
		s = s[j:]
	}
	return b.String()
}

// keyChar is a character API keys and tokens are made of (base64 and
// base64url with the separators keys use); '/' and '.' end a word, so a
// path or a URL keeps its parts.
func keyChar(r rune) bool {
	return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_+=", r))
}

func secretLike(word string) bool {
	if len(word) >= 24 {
		return true
	}
	return len(word) >= 16 && strings.ContainsAny(word, "0123456789") &&
		strings.IndexFunc(word, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0
}
