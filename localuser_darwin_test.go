// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// addLocalUser makes a local user with no home and no shell, in the
// local directory service (macOS has no useradd), in the group staff,
// with the uid one past the highest taken; it returns its uid and gid.
func addLocalUser(name string) (uid, gid int, err error) {
	out, err := exec.Command("dscl", ".", "-list", "/Users", "UniqueID").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("dscl . -list /Users UniqueID: %v", err)
	}
	uid = 600
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			if n, err := strconv.Atoi(f[1]); err == nil && n >= uid && n < 60000 {
				uid = n + 1
			}
		}
	}
	const staff = 20
	path := "/Users/" + name
	for _, args := range [][]string{{"-create", path}, {"-create", path, "UniqueID", strconv.Itoa(uid)},
		{"-create", path, "PrimaryGroupID", strconv.Itoa(staff)}, {"-create", path, "UserShell", "/usr/bin/false"},
		{"-create", path, "NFSHomeDirectory", "/var/empty"}} {
		if out, err := exec.Command("dscl", append([]string{"."}, args...)...).CombinedOutput(); err != nil {
			removeLocalUser(name)
			return 0, 0, fmt.Errorf("dscl . %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return uid, staff, nil
}

func removeLocalUser(name string) { exec.Command("dscl", ".", "-delete", "/Users/"+name).Run() }
