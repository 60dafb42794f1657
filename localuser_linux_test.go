// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"os/exec"
	osuser "os/user"
	"strconv"
)

// addLocalUser makes a local user with no home and no shell, and returns
// its uid and gid.
func addLocalUser(name string) (uid, gid int, err error) {
	if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("useradd %s: %v\n%s", name, err, out)
	}
	u, err := osuser.Lookup(name)
	if err != nil {
		removeLocalUser(name)
		return 0, 0, err
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func removeLocalUser(name string) { exec.Command("userdel", name).Run() }
