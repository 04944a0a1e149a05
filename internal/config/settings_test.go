package config_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/propertywebbuilder/pwb/internal/config"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSettings_DefaultsWithoutAFile(t *testing.T) {
	t.Parallel()
	s, err := config.LoadSettings(filepath.Join(t.TempDir(), "pwb.yml"), "production", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(config.DefaultSettings(), s); diff != "" {
		t.Errorf("no file, no environment: (-default +got)\n%s", diff)
	}
	if len(s.TrustedProxies) != 0 || s.MetricsAddr != "127.0.0.1:9394" || s.RequestTimeout != 1500*time.Millisecond {
		t.Errorf("defaults: %+v", s)
	}
}

// The repository's own config/pwb.yml says the defaults out loud, with
// secure cookies in production.
func TestSettings_TheShippedFile(t *testing.T) {
	t.Parallel()
	for _, env := range []string{"development", "test", "production"} {
		s, err := config.LoadSettings("../../config/pwb.yml", env, nil)
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		want := config.DefaultSettings()
		want.SecureCookies = env == "production"
		if diff := cmp.Diff(want, s); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", env, diff)
		}
	}
}

func TestSettings_FileThenEnvironment(t *testing.T) {
	t.Parallel()
	file := []byte(`
default: &default
  platform_domains: [pwb.example.com, "10.0.0.5", "[fd00::1]"]
  trusted_proxies: 10.0.0.0/8, 192.168.1.7
  sign_in_account_limit: 5
  sign_in_window: 10m
  enquiry_window: 1800
production:
  <<: *default
  metrics_addr: ${METRICS:-0.0.0.0:9100}
  request_timeout: 800ms
  health_interval: 15
`)
	s, err := config.ParseSettings(file, "pwb.yml", "production", envOf(map[string]string{
		"PWB_SIGN_IN_ACCOUNT_LIMIT": "7",
		"PWB_SECURE_COOKIES":        "true",
		"PWB_PHOTO_MAX_SIDE":        "8000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.DefaultSettings()
	want.PlatformDomains = []string{"pwb.example.com", "10.0.0.5", "fd00::1"}
	want.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	want.SignInAccount.Max = 7 // the environment wins
	want.SignInAccount.Window, want.SignInAddress.Window = 10*time.Minute, 10*time.Minute
	want.Enquiries.Window = 30 * time.Minute
	want.MetricsAddr = "0.0.0.0:9100"
	want.RequestTimeout = 800 * time.Millisecond
	want.HealthInterval = 15 * time.Second
	want.SecureCookies = true
	want.PhotoMaxSide = 8000
	if diff := cmp.Diff(want, s, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// An environment the file does not mention takes the defaults.
	s, err = config.ParseSettings(file, "pwb.yml", "staging", nil)
	if err != nil || s.SignInAccount.Max != 10 {
		t.Errorf("staging: %+v, %v", s, err)
	}
	// metrics off.
	s, err = config.ParseSettings(nil, "pwb.yml", "x", envOf(map[string]string{"PWB_METRICS_ADDR": "off"}))
	if err != nil || s.MetricsAddr != "" {
		t.Errorf("metrics off: %q, %v", s.MetricsAddr, err)
	}
}

func TestSettings_Refusals(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", "test:\n  trusted_proxy: 10.0.0.1\n", nil, `pwb.yml:2: environment "test": unknown setting "trusted_proxy"`},
		{"bad network", "test:\n  trusted_proxies: 10.0.0.0/33\n", nil, `trusted_proxies: "10.0.0.0/33" is not an address or network`},
		{"bad network from the environment", "", map[string]string{"PWB_TRUSTED_PROXIES": "proxy.internal"}, `environment: PWB_TRUSTED_PROXIES: "proxy.internal" is not an address`},
		{"bad duration", "test:\n  sign_in_lock: soon\n", nil, `sign_in_lock: want a number of seconds`},
		{"zero health interval", "", map[string]string{"PWB_HEALTH_INTERVAL": "0"}, `PWB_HEALTH_INTERVAL: must be positive, got "0"`},
		{"zero limit", "test:\n  enquiry_limit: 0\n", nil, `enquiry_limit: want a whole number of at least 1, got "0"`},
		{"negative photos", "", map[string]string{"PWB_PHOTOS_PER_PROPERTY": "-3"}, `PWB_PHOTOS_PER_PROPERTY: want a whole number`},
		{"bad metrics address", "test:\n  metrics_addr: 9394\n", nil, `metrics_addr: "9394": want host:port`},
		{"a URL as a domain", "test:\n  platform_domains: https://pwb.example.com/\n", nil, `is not a host name`},
		{"no domains", "test:\n  platform_domains: \" , \"\n", nil, `platform_domains: needs at least one host name`},
		{"lock longer than its maximum", "test:\n  sign_in_lock: 20m\n", nil, `sign_in_max_lock 15m0s is shorter than sign_in_lock 20m0s`},
		{"bad boolean", "", map[string]string{"PWB_SECURE_COOKIES": "sure"}, `must be true or false`},
		{"unset variable", "test:\n  metrics_addr: ${NOPE}\n", nil, `${NOPE} is not set and has no default`},
		{"a mapping as a value", "test:\n  sign_in_window:\n    a: 1\n", nil, `must be a single value or a list`},
		{"not a mapping", "- test\n", nil, `the top level must be a mapping of environments`},
		{"broken YAML", "test: [\n", nil, `YAML syntax error`},
	} {
		_, err := config.ParseSettings([]byte(c.file), "pwb.yml", "test", envOf(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line containing %q", c.name, err, c.want)
		}
	}
}

func TestSettings_UnreadableFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pwb.yml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadSettings(filepath.Join(dir, "pwb.yml"), "test", nil); err == nil || !strings.Contains(err.Error(), "reading settings file") {
		t.Errorf("a directory as the settings file: %v", err)
	}
}

func TestSettingEnv(t *testing.T) {
	t.Parallel()
	if got := config.SettingEnv("sign_in_max_lock"); got != "PWB_SIGN_IN_MAX_LOCK" {
		t.Errorf("SettingEnv = %q", got)
	}
	if n := len(config.SettingKeys()); n != 15 {
		t.Errorf("%d settings, want 15 (update the README's table when adding one)", n)
	}
}
