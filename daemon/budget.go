// SPDX-License-Identifier: MIT

package daemon

import (
	"fmt"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// spendStatus puts what a key spent, its budgets and what its provider
// said is left of its rate limits into its status.
func spendStatus(ks *control.KeyStatus, v rotate.KeyView) {
	ks.CostTodayUSD = float64(v.CostToday) / rotate.NanoUSD
	ks.CostMonthUSD = float64(v.CostMonth) / rotate.NanoUSD
	ks.BudgetUSDDay = float64(v.BudgetDay) / rotate.NanoUSD
	ks.BudgetUSDMonth = float64(v.BudgetMonth) / rotate.NanoUSD
	ks.UnpricedModel = v.Unpriced
	if !v.LeftUntil.IsZero() {
		left, resets := v.Left, v.LeftUntil
		ks.QuotaLeft, ks.QuotaResets = &left, &resets
	}
}

// blindBudget is the problem of a key with a dollar budget (its own or
// its group's) that served a model without a price today: those answers
// counted nothing toward it. "" when there is none.
func blindBudget(provider string, ks control.KeyStatus, group string, cfg *state.Config) string {
	if ks.UnpricedModel == "" {
		return ""
	}
	g := cfg.Groups[group]
	if ks.BudgetUSDDay == 0 && ks.BudgetUSDMonth == 0 && (group == "" || g.BudgetUSDDay == 0 && g.BudgetUSDMonth == 0) {
		return ""
	}
	return fmt.Sprintf("%s/%s served %s today, which has no price: its answers count $0 toward the dollar budget; add [pricing.%q] with input and output (dollars per million tokens)",
		provider, ks.Name, ks.UnpricedModel, ks.UnpricedModel)
}
