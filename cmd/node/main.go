// Command parley is the Parley node: a peer-to-peer MLS group messenger.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "parley: not yet runnable; see README.md")
	os.Exit(1)
}
