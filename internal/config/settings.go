package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Settings are how a pwb serve process behaves on the public internet:
// which hosts are the platform's, which proxies may name the client, how
// guessing and floods are limited. They come from config/pwb.yml (one
// mapping per environment, as database.yml) and from the environment: each
// key's variable, PWB_ and the key in capitals, wins over the file, and the
// default applies when neither sets it.
type Settings struct {
	// PlatformDomains are the platform's own hosts; tenants live on their
	// subdomains, and the platform admin answers only on the hosts
	// themselves. An IP address listed here is a platform host too.
	PlatformDomains []string
	// TrustedProxies are the networks whose requests may name the client
	// (X-Forwarded-For) and the tenant (X-Website-Slug). Default none.
	TrustedProxies []netip.Prefix
	// SecureCookies marks session cookies Secure, for serving over HTTPS.
	SecureCookies bool
	// MetricsAddr is where /metrics is served, apart from the public
	// listener; empty turns it off.
	MetricsAddr string
	// RequestTimeout bounds the database work of one request: past it the
	// request is answered 503, whatever its shard is doing.
	RequestTimeout time.Duration
	// HealthInterval is how often the platform admin's poller checks every
	// shard's health.
	HealthInterval time.Duration

	// SignInAccount and SignInAddress limit password guessing per account
	// (normalised email) and per client address.
	SignInAccount, SignInAddress Limit
	// Enquiries limits enquiries and contact forms per client address per
	// website.
	Enquiries Limit

	// PhotosPerProperty bounds the photos one property may have.
	PhotosPerProperty int
	// PhotoMaxSide bounds an uploaded photo's declared width and height.
	PhotoMaxSide int
}

// Limit is how many attempts a window allows and, for sign-ins, how long a
// subject that passes it is locked: Lock at first, twice as long each time
// after, up to MaxLock.
type Limit struct {
	Max     int
	Window  time.Duration
	Lock    time.Duration
	MaxLock time.Duration
}

// DefaultSettings are the settings when neither the file nor the
// environment says otherwise.
func DefaultSettings() Settings {
	return Settings{
		// Browsers resolve *.localhost to loopback, so tenant sites work
		// locally with no DNS set-up.
		PlatformDomains: []string{"localhost", "pwb.localhost"},
		MetricsAddr:     "127.0.0.1:9394",
		RequestTimeout:  1500 * time.Millisecond,
		HealthInterval:  5 * time.Second,
		SignInAccount:   Limit{Max: 10, Window: 15 * time.Minute, Lock: time.Minute, MaxLock: 15 * time.Minute},
		SignInAddress:   Limit{Max: 50, Window: 15 * time.Minute, Lock: time.Minute, MaxLock: 15 * time.Minute},
		Enquiries:       Limit{Max: 10, Window: time.Hour},

		PhotosPerProperty: 50,
		PhotoMaxSide:      12000,
	}
}

// settingKeys maps each key of pwb.yml to what it sets, in the order the
// documentation lists them.
var settingKeys = []struct {
	key string
	set func(s *Settings, v string) error
}{
	{"platform_domains", func(s *Settings, v string) error { return setDomains(&s.PlatformDomains, v) }},
	{"trusted_proxies", func(s *Settings, v string) error { return setPrefixes(&s.TrustedProxies, v) }},
	{"secure_cookies", func(s *Settings, v string) (err error) { s.SecureCookies, err = parseBool(v); return err }},
	{"metrics_addr", func(s *Settings, v string) error { return setAddr(&s.MetricsAddr, v) }},
	{"request_timeout", func(s *Settings, v string) error { return setSeconds(&s.RequestTimeout, v) }},
	{"health_interval", func(s *Settings, v string) error { return setSeconds(&s.HealthInterval, v) }},
	{"sign_in_account_limit", func(s *Settings, v string) error { return setCount(&s.SignInAccount.Max, v) }},
	{"sign_in_address_limit", func(s *Settings, v string) error { return setCount(&s.SignInAddress.Max, v) }},
	{"sign_in_window", func(s *Settings, v string) error {
		return setBoth(&s.SignInAccount.Window, &s.SignInAddress.Window, v)
	}},
	{"sign_in_lock", func(s *Settings, v string) error { return setBoth(&s.SignInAccount.Lock, &s.SignInAddress.Lock, v) }},
	{"sign_in_max_lock", func(s *Settings, v string) error {
		return setBoth(&s.SignInAccount.MaxLock, &s.SignInAddress.MaxLock, v)
	}},
	{"enquiry_limit", func(s *Settings, v string) error { return setCount(&s.Enquiries.Max, v) }},
	{"enquiry_window", func(s *Settings, v string) error { return setSeconds(&s.Enquiries.Window, v) }},
	{"photos_per_property", func(s *Settings, v string) error { return setCount(&s.PhotosPerProperty, v) }},
	{"photo_max_side", func(s *Settings, v string) error { return setCount(&s.PhotoMaxSide, v) }},
}

// SettingKeys lists the keys of pwb.yml; each key's environment variable is
// SettingEnv(key).
func SettingKeys() []string {
	out := make([]string, len(settingKeys))
	for i, k := range settingKeys {
		out[i] = k.key
	}
	return out
}

// SettingEnv is the environment variable that sets key.
func SettingEnv(key string) string { return "PWB_" + strings.ToUpper(key) }

// LoadSettings reads environment env of the settings file at path, which
// may be missing, then applies the environment through lookup.
func LoadSettings(path, env string, lookup func(string) (string, bool)) (Settings, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data = nil
	} else if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Settings{}, &configError{fmt.Sprintf("reading settings file %s: %v", path, err), err}
	}
	return ParseSettings(data, path, env, lookup)
}

// ParseSettings parses environment env of a pwb.yml held in data (nil for
// no file), then applies the environment through lookup; file is used only
// in messages.
func ParseSettings(data []byte, file, env string, lookup func(string) (string, bool)) (Settings, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	s := DefaultSettings()
	fromFile, err := settingsFile(data, file, env, lookup)
	if err != nil {
		return Settings{}, err
	}
	for _, k := range settingKeys {
		w := where{file: file, env: env, field: k.key}
		v, ok := lookup(SettingEnv(k.key))
		if ok {
			w = where{file: "environment", field: SettingEnv(k.key)}
		} else if fv, found := fromFile[k.key]; found {
			v, ok = fv.value, true
			w.line = fv.line
		}
		if !ok {
			continue
		}
		if err := k.set(&s, strings.TrimSpace(v)); err != nil {
			return Settings{}, w.errorf("%v", err)
		}
	}
	for _, l := range []struct {
		name string
		l    Limit
	}{{"sign_in_account", s.SignInAccount}, {"sign_in_address", s.SignInAddress}} {
		if l.l.MaxLock < l.l.Lock {
			return Settings{}, where{file: file, env: env}.errorf("sign_in_max_lock %s is shorter than sign_in_lock %s", l.l.MaxLock, l.l.Lock)
		}
	}
	return s, nil
}

type settingValue struct {
	value string
	line  int
}

// settingsFile returns the keys environment env of a settings file sets.
func settingsFile(data []byte, file, env string, lookup func(string) (string, bool)) (map[string]settingValue, error) {
	out := map[string]settingValue{}
	if data == nil {
		return out, nil
	}
	w := where{file: file}
	envs, empty, err := environments(w, data)
	if err != nil {
		return nil, err
	}
	if empty {
		return out, nil // an empty file sets nothing
	}
	w.env = env
	var envNode *yaml.Node
	for _, f := range envs {
		if f.key.Value == env {
			envNode = deref(f.val)
		}
	}
	if envNode == nil || isNull(envNode) {
		return out, nil // nothing set for this environment: defaults
	}
	if envNode.Kind != yaml.MappingNode {
		return nil, w.at(envNode).errorf("must be a mapping of settings, not %s", kindName(envNode))
	}
	fields, err := pairs(w, envNode)
	if err != nil {
		return nil, err
	}
	known := SettingKeys()
	for _, f := range fields {
		key, v := f.key.Value, deref(f.val)
		fw := w.at(v)
		fw.field = key
		if !slices.Contains(known, key) {
			return nil, w.at(f.key).errorf("unknown setting %q (known: %s)", key, strings.Join(known, ", "))
		}
		if v.Kind == yaml.SequenceNode { // a list, for the list settings
			var items []string
			for _, it := range v.Content {
				it = deref(it)
				if it.Kind != yaml.ScalarNode {
					return nil, fw.errorf("must be a value or a list of values")
				}
				s, err := expand(fw.at(it), it, lookup)
				if err != nil {
					return nil, err
				}
				items = append(items, s)
			}
			out[key] = settingValue{strings.Join(items, ","), v.Line}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fw.errorf("must be a single value or a list, not %s", kindName(v))
		}
		s, err := expand(fw, v, lookup)
		if err != nil {
			return nil, err
		}
		out[key] = settingValue{s, v.Line}
	}
	return out, nil
}

func splitComma(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func setDomains(dst *[]string, v string) error {
	list := splitComma(strings.ToLower(v))
	if len(list) == 0 {
		return errors.New("needs at least one host name")
	}
	for i, d := range list {
		if a, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil {
			list[i] = a.Unmap().String()
			continue
		}
		if strings.ContainsAny(d, "/:@ ") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
			return fmt.Errorf("%q is not a host name (write it without scheme, port or path, such as pwb.example.com)", d)
		}
	}
	*dst = list
	return nil
}

func setPrefixes(dst *[]netip.Prefix, v string) error {
	var out []netip.Prefix
	for _, p := range splitComma(v) {
		var pfx netip.Prefix
		if strings.Contains(p, "/") {
			var err error
			if pfx, err = netip.ParsePrefix(p); err != nil {
				return fmt.Errorf("%q is not an address or network (want 10.0.0.1, 10.0.0.0/8 or fd00::/8)", p)
			}
		} else {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return fmt.Errorf("%q is not an address or network (want 10.0.0.1, 10.0.0.0/8 or fd00::/8)", p)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	*dst = out
	return nil
}

func setAddr(dst *string, v string) error {
	if v == "" || v == "off" {
		*dst = ""
		return nil
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return fmt.Errorf("%q: want host:port (such as 127.0.0.1:9394), or off", v)
	}
	*dst = v
	return nil
}

func setSeconds(dst *time.Duration, v string) (err error) {
	*dst, err = seconds(v)
	return err
}

func setBoth(a, b *time.Duration, v string) error {
	d, err := seconds(v)
	*a, *b = d, d
	return err
}

func setCount(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return fmt.Errorf("want a whole number of at least 1, got %q", v)
	}
	*dst = n
	return nil
}
