package wire

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

const floodStart = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"

func emptyBlock(i int) string {
	return fmt.Sprintf("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n", i)
}

// heapInUse is the heap's live bytes, after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// A stream of 700,000 empty content blocks (61 MB) is not assembled: the
// assembler gives up at its block limit, having held a few MiB, and lets
// go of them; what comes after adds nothing.
func TestAssemblerRefusesEndlessBlocks(t *testing.T) {
	before := heapInUse()
	var a Assembler
	a.Write([]byte(floodStart))
	var peak int64
	sent := 0
	for ; sent < 700_000 && !a.Ended(); sent++ {
		a.Write([]byte(emptyBlock(sent)))
		if sent%2_000 == 0 {
			peak = max(peak, heapInUse()-before)
		}
	}
	held := heapInUse() - before
	runtime.KeepAlive(&a)
	t.Logf("read %d blocks; heap peak +%d KiB, +%d KiB after", sent, peak>>10, held>>10)
	if peak > 16<<20 || held > 1<<20 {
		t.Errorf("the assembler held %d MiB at its peak, %d KiB once it stopped", peak>>20, held>>10)
	}
	if _, _, err := a.Result(); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "content blocks") {
		t.Errorf("the flood's result: %v", err)
	}
	a.Write([]byte(emptyBlock(sent) + strings.Repeat("data: x\n", 1000)))
	if f := a.Footprint(); f != 0 {
		t.Errorf("a stopped assembler still takes %d bytes", f)
	}
}

// What an assembly takes in memory, message and its copy written out, is
// no more than its footprint says, whatever the message is made of; and
// past its limit it stops.
func TestAssemblerFootprintCoversItsMemory(t *testing.T) {
	const stop = "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	delta := func(d string) string {
		return `data: {"type":"content_block_delta","index":0,"delta":` + d + "}\n\n"
	}
	text := delta(`{"type":"text_delta","text":"` + strings.Repeat(`\u0001\"x`, 1000) + `"}`)
	wide := func(i int) string {
		var b strings.Builder
		for k := range 100 {
			fmt.Fprintf(&b, `"key%d":%d,`, k, k)
		}
		return fmt.Sprintf(`data: {"type":"content_block_start","index":%d,"content_block":{%s"type":"text","text":""}}`+"\n\n", i, b.String())
	}
	for _, tc := range []struct {
		name       string
		start, end string
		part       func(i int) string
		n          int
	}{
		{"empty blocks", "", "", emptyBlock, 4000},
		{"wide blocks", "", "", wide, 300},
		{"text", emptyBlock(0), stop, func(int) string { return text }, 500},
		{"citations", emptyBlock(0), stop, func(int) string {
			return delta(`{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x","document_index":0,"start_char_index":0,"end_char_index":1}}`)
		}, 5000},
		{"tool input", `data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"x","input":{}}}` + "\n\n" +
			delta(`{"type":"input_json_delta","partial_json":"[0"}`), delta(`{"type":"input_json_delta","partial_json":"]"}`) + stop,
			func(int) string {
				return delta(`{"type":"input_json_delta","partial_json":",\"a\\u00e9\\n\\\"\",1,2,3,4,5,6,7,8,9"}`)
			}, 10_000},
		{"message deltas", "", "", func(i int) string {
			return fmt.Sprintf(`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","k%d":1},"usage":{"output_tokens":%d}}`+"\n\n", i, i)
		}, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed := func(a *Assembler) {
				a.Write([]byte(floodStart + tc.start))
				for i := 0; i < tc.n && !a.Ended(); i++ {
					a.Write([]byte(tc.part(i)))
				}
				a.Write([]byte(tc.end + "data: {\"type\":\"message_stop\"}\n\n"))
			}
			before := heapInUse()
			a := NewAssembler(MaxAssembled, nil)
			feed(a)
			footprint, holds := a.Footprint(), a.held+int64(cap(a.lines.buf)+cap(a.data))
			held := heapInUse() - before
			status, body, err := a.Result()
			used := heapInUse() - before
			runtime.KeepAlive(a)
			runtime.KeepAlive(body)
			t.Logf("footprint %d KiB; heap +%d KiB, of which it counts %d KiB; +%d KiB with the message of %d KiB",
				footprint>>10, held>>10, holds>>10, used>>10, len(body)>>10)
			if status != 200 || err != nil {
				t.Fatalf("result %d %v", status, err)
			}
			// Give or take what the runtime and the test allocate meanwhile.
			if slack := int64(64 << 10); held > holds+slack || used > footprint+slack {
				t.Errorf("the assembly took %d KiB, %d KiB with its message; its footprint says %d KiB, %d KiB",
					held>>10, used>>10, holds>>10, footprint>>10)
			}
			// Under a limit of half that, it stops.
			small := NewAssembler(footprint/2, nil)
			feed(small)
			if _, _, err := small.Result(); !errors.Is(err, ErrTooLarge) {
				t.Errorf("under a limit of %d KiB: %v", footprint>>11, err)
			}
		})
	}
}

// A line or an event longer than maxLineSize is not held.
func TestAssemblerRefusesLongEvents(t *testing.T) {
	for name, stream := range map[string]string{
		"line":  "data: {\"type\":\"ping\",\"x\":\"" + strings.Repeat("x", maxLineSize) + "\"}\n\n",
		"event": strings.Repeat("data: "+strings.Repeat(" ", 1<<20)+"\n", 5) + "\n",
	} {
		var a Assembler
		a.Write([]byte(floodStart))
		for b := []byte(stream); len(b) > 0; {
			n := min(4<<10, len(b))
			a.Write(b[:n])
			b = b[n:]
		}
		if _, _, err := a.Result(); !errors.Is(err, ErrTooLarge) || a.Footprint() != 0 {
			t.Errorf("%s: %v, footprint %d", name, err, a.Footprint())
		}
	}
}
