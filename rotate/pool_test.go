package rotate

import (
	"sync"
	"testing"
)

func TestPoolRoundRobin(t *testing.T) {
	tests := []struct {
		n    int
		want []int
	}{
		{1, []int{0, 0, 0}},
		{2, []int{0, 1, 0, 1}},
		{3, []int{0, 1, 2, 0, 1, 2, 0}},
	}
	for _, tt := range tests {
		p := NewPool(tt.n)
		for i, w := range tt.want {
			if got, ok := p.Pick(); !ok || got != w {
				t.Errorf("n=%d pick %d = %d,%v want %d", tt.n, i, got, ok, w)
			}
		}
	}
	if _, ok := NewPool(0).Pick(); ok {
		t.Error("empty pool picked a key")
	}
}

func TestPoolSharesEvenlyUnderConcurrency(t *testing.T) {
	p := NewPool(4)
	var mu sync.Mutex
	counts := make([]int, 4)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				i, _ := p.Pick()
				mu.Lock()
				counts[i]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, c := range counts {
		if c != 2000 {
			t.Errorf("key %d picked %d times, want 2000", i, c)
		}
	}
}
