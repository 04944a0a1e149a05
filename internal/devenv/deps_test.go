package devenv_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// `make dev` installs only what running the platform needs; the browser,
// the pooler and wrk are for `make test` and the benchmarks.
func TestDeps_MakeDevInstallsOnlyWhatRunningNeeds(t *testing.T) {
	needs := func(mode string) []string {
		t.Helper()
		out, err := exec.Command("bash", "../../scripts/install-deps.sh", mode, "--print").CombinedOutput()
		if err != nil {
			t.Fatalf("install-deps.sh %s --print: %v\n%s", mode, err, out)
		}
		return strings.Fields(string(out))
	}
	if got := needs("run"); !slices.Equal(got, []string{"postgresql"}) {
		t.Errorf("running the platform installs %q, want only postgresql", got)
	}
	test := needs("test")
	for _, want := range []string{"postgresql", "chromium", "wrk", "pgbouncer"} {
		if !slices.Contains(test, want) {
			t.Errorf("testing installs %q, which lacks %s", test, want)
		}
	}

	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{"dev": "deps-run", "deps-run": "install-deps.sh run", "test": "deps"} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:(.*)\n((?:\t.*\n)*)`)
		m := re.FindSubmatch(makefile)
		if m == nil {
			t.Fatalf("the Makefile has no %s target", target)
		}
		prereqs, recipe := strings.Fields(string(m[1])), string(m[2])
		if !slices.Contains(prereqs, want) && !strings.Contains(recipe, want) {
			t.Errorf("make %s does not use %s: %q %q", target, want, prereqs, recipe)
		}
	}
	if m := regexp.MustCompile(`(?m)^dev:(.*)$`).FindSubmatch(makefile); m != nil && slices.Contains(strings.Fields(string(m[1])), "deps") {
		t.Errorf("make dev installs the test tools too: %s", m[0])
	}
}
