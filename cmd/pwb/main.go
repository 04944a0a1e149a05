// Command pwb runs and operates the PropertyWebBuilder platform.
package main

import (
	"os"

	"github.com/propertywebbuilder/pwb/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
