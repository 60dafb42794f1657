// SPDX-License-Identifier: MIT

package cli

import (
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// A subcommand's help shows its own examples, never those of the
// top-level command of the same name: service status is not status.
func TestSubcommandHelpHasItsOwnExamples(t *testing.T) {
	for _, args := range [][]string{{"service", "status", "--help"}, {"help", "service", "status"}} {
		out, _, code := run(t, args...)
		if code != 0 || !strings.Contains(out, "llmkey service status") || strings.Contains(out, "llmkey status -q") || strings.Contains(out, "jq '.providers'") {
			t.Errorf("llmkey %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
}

// set's help says what 0 means for each number: no limit for a limit,
// the default share for the weight (which is no limit of anything).
func TestSetHelpSaysWhatZeroMeans(t *testing.T) {
	out, _, _ := run(t, "set", "--help")
	flat := strings.Join(strings.Fields(out), " ")
	if !strings.Contains(flat, "--weight N set weight to N (its share of requests under the weighted strategy; 0: the default, 1)") {
		t.Errorf("set --help on --weight:\n%s", out)
	}
	for _, l := range (state.Key{}).Limits() {
		if l.Field != "weight" && !strings.Contains(flat, "set "+l.Field+" to N (0: no limit)") {
			t.Errorf("set --help on --%s:\n%s", l.Field, out)
		}
	}
	if strings.Contains(flat, "weight to N (0: no limit)") {
		t.Errorf("set --help calls a weight of 0 no limit:\n%s", out)
	}
}
