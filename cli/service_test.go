package cli

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// plistValue parses one plist value after its opening tag.
func plistValue(t *testing.T, d *xml.Decoder, start xml.StartElement) any {
	t.Helper()
	switch start.Name.Local {
	case "string", "integer":
		var s string
		if err := d.DecodeElement(&s, &start); err != nil {
			t.Fatal(err)
		}
		return s
	case "true", "false":
		d.Skip()
		return start.Name.Local == "true"
	case "array":
		var out []any
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				out = append(out, plistValue(t, d, tok))
			case xml.EndElement:
				return out
			}
		}
	case "dict":
		out := map[string]any{}
		key := ""
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				if tok.Name.Local == "key" {
					d.DecodeElement(&key, &tok)
					continue
				}
				out[key] = plistValue(t, d, tok)
			case xml.EndElement:
				return out
			}
		}
	}
	t.Fatalf("unknown plist element %s", start.Name.Local)
	return nil
}

// The launchd agent, generated for macOS here and parsed back: every
// field as launchd reads it.
func TestLaunchdPlistParsesBack(t *testing.T) {
	p := state.Paths{Keyfile: "/Users/a b/keys & more.toml", StateDir: "/Users/a b/.local/state/llmkey", RuntimeDir: "/Users/a b/.cache/llmkey/run"}
	files := ServiceFiles("darwin", "/Users/a b", "/opt/llmkey <1>/bin/llmkey", p, "127.0.0.1:5565")
	if len(files) != 1 || files[0].Path != "/Users/a b/Library/LaunchAgents/dev.llmkey.daemon.plist" {
		t.Fatalf("files: %+v", files)
	}
	d := xml.NewDecoder(strings.NewReader(files[0].Content))
	var top map[string]any
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "dict" {
			top = plistValue(t, d, se).(map[string]any)
		}
	}
	env, _ := top["EnvironmentVariables"].(map[string]any)
	keep, _ := top["KeepAlive"].(map[string]any)
	args, _ := top["ProgramArguments"].([]any)
	switch {
	case top["Label"] != "dev.llmkey.daemon":
		t.Errorf("Label: %v", top["Label"])
	case len(args) != 2 || args[0] != "/opt/llmkey <1>/bin/llmkey" || args[1] != "daemon":
		t.Errorf("ProgramArguments: %v", args)
	case env["LLMKEY_KEYFILE"] != p.Keyfile || env["LLMKEY_STATE_DIR"] != p.StateDir || env["LLMKEY_RUNTIME_DIR"] != p.RuntimeDir:
		t.Errorf("EnvironmentVariables: %v", env)
	case top["RunAtLoad"] != true || keep["SuccessfulExit"] != false:
		t.Errorf("RunAtLoad %v, KeepAlive %v", top["RunAtLoad"], keep)
	case top["Umask"] != "63" || top["ProcessType"] != "Background":
		t.Errorf("Umask %v ProcessType %v", top["Umask"], top["ProcessType"])
	case top["StandardErrorPath"] != p.StateDir+"/launchd.log":
		t.Errorf("StandardErrorPath: %v", top["StandardErrorPath"])
	}
	if len(top) != 8 {
		t.Errorf("%d fields, want the 8 checked: %v", len(top), top)
	}
	if !strings.Contains(files[0].Content, serviceMark) {
		t.Error("no mark for uninstall")
	}
}
