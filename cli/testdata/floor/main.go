// SPDX-License-Identifier: MIT

// Command floor is the least any llmkey exec built from the parts llmkey
// is made of can do, for the harness to time beside llmkey: urfave/cli/v2
// parses the command line; one request, written with net/http (which the
// daemon's proxy is built on, in the same binary) on a connection of its
// own as llmkey's CLI does, asks the daemon's control socket for the
// proxy's address and token; and the command replaces the process. It
// links nothing else and does no other work.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{Name: "floor", Commands: []*cli.Command{{
		Name:  "exec",
		Flags: []cli.Flag{&cli.StringFlag{Name: "socket", Required: true}},
		Action: func(c *cli.Context) error {
			conn, err := net.Dial("unix", c.String("socket"))
			if err != nil {
				return err
			}
			defer conn.Close()
			req, _ := http.NewRequest("GET", "http://llmkey/v1/env", nil)
			req.Close = true
			if err := req.Write(conn); err != nil {
				return err
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				return err
			}
			var env struct {
				ProxyURL string `json:"proxy_url"`
				Token    string `json:"token"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				return err
			}
			if env.ProxyURL == "" || env.Token == "" {
				return fmt.Errorf("no proxy address or token in the daemon's answer")
			}
			path, err := exec.LookPath(c.Args().First())
			if err != nil {
				return err
			}
			return syscall.Exec(path, c.Args().Slice(), append(os.Environ(), "OPENAI_BASE_URL="+env.ProxyURL+"/openai/v1", "OPENAI_API_KEY="+env.Token))
		},
	}}}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
