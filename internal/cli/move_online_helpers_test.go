package cli

// Helpers of the online-move load test and benchmark (move_online_load_test.go,
// move_online_bench_test.go), prefixed onl: writes sent through running
// `pwb serve` processes and timed, a move run as its own process, and what
// the test reads back from the databases.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/journal"
)

// onlWrite is one write sent through pwb serve: what it wrote, its answer
// and how long the answer took.
type onlWrite struct {
	kind   string // enquiry, contact, edit, upload, unphoto, create, unproperty, page, unpage
	key    string // what finds it in the database: a marker, a title, a photo's md5, a slug
	target string // the id of the row it changes or deletes, if any
	photo  string // the md5 of the photo it sends, if any
	proc   int    // the pwb serve that answered, by index
	start  time.Time
	end    time.Time
	status int
	// location is the redirect's, which says what happened (?done=... or
	// ?sent=1).
	location string
	err      error // the request could not be sent or its answer read
}

func (w onlWrite) took() time.Duration { return w.end.Sub(w.start) }

// acked reports whether the write was answered as done: a 2xx, or a
// redirect to the page that says it was done.
func (w onlWrite) acked() bool {
	if w.err != nil || w.status < 200 || w.status >= 400 {
		return false
	}
	return w.status < 300 || strings.Contains(w.location, "done=") || strings.Contains(w.location, "sent=1")
}

// answer is the write's status, or its transport error, as a short word
// for counts.
func (w onlWrite) answer() string {
	if w.err != nil {
		return "error"
	}
	return fmt.Sprint(w.status)
}

func (w onlWrite) String() string {
	s := fmt.Sprintf("%s %q (target %s) via serve %d [%s .. %s, %s]", w.kind, w.key, w.target, w.proc,
		w.start.Format("15:04:05.000"), w.end.Format("15:04:05.000"), w.took().Round(time.Millisecond))
	if w.err != nil {
		return s + " error: " + w.err.Error()
	}
	return s + fmt.Sprintf(" status %d location %q", w.status, w.location)
}

// onlSite sends requests to one tenant's host through a set of pwb serve
// processes, the n-th of a writer to process n modulo their number, with the
// site admin's session when it has one.
type onlSite struct {
	client *http.Client
	procs  []*serveProcess
	host   string
	cookie string // "name=value" of the site admin's session
}

func onlNewSite(procs []*serveProcess, host string) *onlSite {
	return &onlSite{
		client: &http.Client{
			// Far above any wait the tests accept: a slow answer must be
			// measured, not cut off.
			Timeout:       2 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
		},
		procs: procs, host: host,
	}
}

// send sends one request and times it from just before it is sent to when
// the whole answer has arrived.
func (s *onlSite) send(proc int, method, path, contentType string, body []byte) onlWrite {
	w := onlWrite{proc: proc % len(s.procs)}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.procs[w.proc].base+path, rd)
	if err != nil {
		w.err = err
		return w
	}
	req.Host = s.host
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.cookie != "" {
		req.Header.Set("Cookie", s.cookie)
	}
	w.start = time.Now()
	res, err := s.client.Do(req)
	if err != nil {
		w.end, w.err = time.Now(), err
		return w
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	w.end = time.Now()
	if err != nil {
		w.err = fmt.Errorf("reading the answer: %w", err)
	}
	w.status, w.location = res.StatusCode, res.Header.Get("Location")
	return w
}

func (s *onlSite) post(proc int, path string, form url.Values) onlWrite {
	return s.send(proc, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()))
}

// postPhoto posts fields and one photo, in the field "photos", as a
// multipart form.
func (s *onlSite) postPhoto(proc int, path string, fields url.Values, photo []byte) onlWrite {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, k := range onlSorted(fields) {
		for _, v := range fields[k] {
			mw.WriteField(k, v)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="photos"; filename="photo.png"`)
	h.Set("Content-Type", "image/png")
	part, _ := mw.CreatePart(h)
	part.Write(photo)
	mw.Close()
	return s.send(proc, http.MethodPost, path, mw.FormDataContentType(), b.Bytes())
}

func onlSorted(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// signIn signs the site admin in through the first process and keeps the
// session for every later request, whichever process answers it: sessions
// live on primary.
func (s *onlSite) signIn(t testing.TB, email, password string) {
	t.Helper()
	form := url.Values{"email": {email}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, s.procs[0].base+"/site_admin/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = s.host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in to %s: status %d", s.host, res.StatusCode)
	}
	for _, c := range res.Cookies() {
		if c.Name == "pwb_session" && c.Value != "" {
			s.cookie = c.Name + "=" + c.Value
			return
		}
	}
	t.Fatalf("signing in to %s: no session cookie in %v", s.host, res.Header)
}

// onlPNG is a small PNG, different for every seed.
func onlPNG(seed int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for i := range 16 {
		v := uint32(seed)*2654435761 + uint32(i)*40503
		img.Set(i%4, i/4, color.NRGBA{uint8(seed >> (8 * (i % 4))), uint8(v >> 8), uint8(v >> 16), 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func onlMD5(b []byte) string {
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}

// onlLoad runs writers, each a loop of one write at a time, until stopped.
type onlLoad struct {
	done chan struct{}
	halt sync.Once
	wg   sync.WaitGroup
	each [][]onlWrite // per writer
}

func onlNewLoad(t testing.TB) *onlLoad {
	l := &onlLoad{done: make(chan struct{})}
	t.Cleanup(l.end) // if the test stops early
	return l
}

// writer starts a writer that calls step(n) for n = 0, 1, ... and keeps
// each write it returns, until step reports false or the load stops. The
// writer starts its next write every pace after the last started, or as
// soon as the last is answered when that took longer: a stalled write does
// not make the next ones come in a burst. Writers must all be added before
// the load is stopped.
func (l *onlLoad) writer(pace time.Duration, step func(n int) (onlWrite, bool)) {
	i := len(l.each)
	l.each = append(l.each, nil)
	l.wg.Go(func() {
		next := time.Now()
		for n := 0; l.running(); n++ {
			w, ok := step(n)
			if !ok {
				return
			}
			l.each[i] = append(l.each[i], w)
			next = next.Add(pace)
			if now := time.Now(); next.Before(now) {
				next = now
			}
			select {
			case <-l.done:
				return
			case <-time.After(time.Until(next)):
			}
		}
	})
}

// visitorWriters adds two visitors to the load, each sending, at pace,
// contact forms and enquiries on properties 1 to 9 in turn, each message
// marked so that it can be found on whichever shard holds it (key).
func (l *onlLoad) visitorWriters(visitors *onlSite, pace time.Duration, emailPrefix string) {
	for v := range 2 {
		l.writer(pace, func(n int) (onlWrite, bool) {
			marker := fmt.Sprintf("[onl %d-%d]", v, n)
			form := url.Values{"name": {fmt.Sprintf("Visitor %d-%d", v, n)}, "email": {fmt.Sprintf("%s-%d-%d@example.com", emailPrefix, v, n)},
				"message": {"Is it still available? " + marker}}
			var w onlWrite
			if n%2 == 0 {
				w = visitors.post(n+v, "/contact", form)
				w.kind = "contact"
			} else {
				w = visitors.post(n+v, fmt.Sprintf("/properties/property-%d/enquiry", 1+(v+n)%9), form)
				w.kind = "enquiry"
			}
			w.key = marker
			return w, true
		})
	}
}

// editWriter adds an editor to the load, saving properties 11 to 19 (ids
// by slug) in turn at pace, each with a title of its own (key).
func (l *onlLoad) editWriter(admin *onlSite, ids map[string]string, pace time.Duration) {
	edited := onlSlugs(11, 19)
	l.writer(pace, func(n int) (onlWrite, bool) {
		id := ids[edited[n%len(edited)]]
		title := fmt.Sprintf("Edited %d", n)
		fields := url.Values{"title": {title}, "description": {"Bright, with a view of the sea."},
			"for_sale": {"1"}, "sale_price": {"250,000"}, "sale_currency": {"EUR"}, "bedrooms": {"2"},
			"bathrooms": {"1"}, "city": {"Valencia"}, "visible": {"1"}, "features": {"Pool\nGarden"}}
		w := admin.post(n, "/site_admin/properties/"+id, fields)
		w.kind, w.key, w.target = "edit", title, id
		return w, true
	})
}

func (l *onlLoad) running() bool {
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

func (l *onlLoad) end() {
	l.halt.Do(func() { close(l.done) })
	l.wg.Wait()
}

// stop ends the load and returns every write it made, in the order they
// started.
func (l *onlLoad) stop() []onlWrite {
	l.end()
	var all []onlWrite
	for _, ws := range l.each {
		all = append(all, ws...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	return all
}

// onlMoveRun is one `pwb sharding migrate` process: the move its last line
// reported, when it ran, and when each phase's first progress line arrived.
type onlMoveRun struct {
	move       journal.Move
	start, end time.Time
	phases     map[journal.Phase]time.Time
	timeline   string // phase@seconds after the start, in order
	out        string
}

func (r onlMoveRun) took() time.Duration { return r.end.Sub(r.start) }

// phase is when the first progress line of phase p arrived, or the zero time.
func (r onlMoveRun) phase(p journal.Phase) time.Time { return r.phases[p] }

// onlMigrate runs `pwb sharding migrate TENANT TARGET --mode MODE --yes
// --json --cleanup-delay DELAY` as its own process and fails the test
// unless it ends with a done line.
func onlMigrate(t testing.TB, cfg, tenant, target string, mode journal.Mode, cleanupDelay time.Duration, limit time.Duration) onlMoveRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := pwbProcess(ctx, cfg, "sharding", "migrate", tenant, target, "--mode", string(mode), "--yes", "--json",
		"--cleanup-delay", cleanupDelay.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	run := onlMoveRun{phases: map[journal.Phase]time.Time{}}
	run.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out, timeline strings.Builder
	var last moveResult
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		now := time.Now()
		out.WriteString(sc.Text() + "\n")
		var line progressLine
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Kind == "progress" {
			if _, seen := run.phases[line.Phase]; !seen {
				run.phases[line.Phase] = now
				fmt.Fprintf(&timeline, " %s@%.2fs", line.Phase, now.Sub(run.start).Seconds())
			}
		}
		last = moveResult{}
		json.Unmarshal(sc.Bytes(), &last)
	}
	err = cmd.Wait()
	run.end = time.Now()
	run.out, run.timeline = out.String(), strings.TrimSpace(timeline.String())
	if err != nil {
		t.Fatalf("pwb sharding migrate %s %s --mode %s: %v\nstdout:\n%s\nstderr:\n%s", tenant, target, mode, err, out.String(), stderr.String())
	}
	if last.Event != "done" {
		t.Fatalf("pwb sharding migrate should end with a done line:\n%s", out.String())
	}
	run.move = last.Move
	return run
}

// onlMoves is `pwb sharding moves TENANT --json`.
func onlMoves(t *testing.T, cfg, tenant string) []journal.Move {
	t.Helper()
	var moves []journal.Move
	if err := json.Unmarshal([]byte(mustPWB(t, cfg, "sharding", "moves", tenant, "--json")), &moves); err != nil {
		t.Fatal(err)
	}
	return moves
}

// onlArtifacts lists the online moves' replication slots and publications
// (pwb_move_...) left on the databases, as "shard: kind name".
func onlArtifacts(t testing.TB, urls map[string]string) []string {
	t.Helper()
	var left []string
	for _, name := range onlSortedKeys(urls) {
		for _, row := range onlRows(t, urls[name], `
			SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pwb\_move\_%'
			UNION ALL
			SELECT 'publication ' || pubname FROM pg_publication WHERE pubname LIKE 'pwb\_move\_%'`) {
			left = append(left, name+": "+row[0])
		}
	}
	return left
}

func onlSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// onlRows runs sql on the database at dbURL and returns every row, each
// column as text (NULL as "").
func onlRows(t testing.TB, dbURL, sql string, args ...any) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if v != nil {
				if b, ok := v.([16]byte); ok { // a uuid
					row[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
				} else {
					row[i] = fmt.Sprint(v)
				}
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// onlMap is onlRows of two columns as a map of the first to the second.
func onlMap(t testing.TB, dbURL, sql string, args ...any) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, r := range onlRows(t, dbURL, sql, args...) {
		m[r[0]] = r[1]
	}
	return m
}

// onlCounts is onlRows of two columns, a key and a count, as a map.
func onlCounts(t testing.TB, dbURL, sql string, args ...any) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, r := range onlRows(t, dbURL, sql, args...) {
		var n int
		fmt.Sscan(r[1], &n)
		m[r[0]] += n
	}
	return m
}

// onlMetricsShow reads a pwb serve's /metrics and reports whether it has
// answered requests of a tenant on shard.
func onlMetricsShow(t testing.TB, p *serveProcess, shard string) bool {
	t.Helper()
	res, err := p.client.Get(p.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return bytes.Contains(b, []byte(`shard="`+shard+`"`))
}

// onlStats summarises the waits of writes.
type onlStats struct {
	n        int
	max, p99 time.Duration
	slowest  onlWrite
}

func onlWaits(ws []onlWrite) onlStats {
	var s onlStats
	var d []time.Duration
	for _, w := range ws {
		d = append(d, w.took())
		if w.took() > s.max {
			s.max, s.slowest = w.took(), w
		}
	}
	s.n = len(d)
	if len(d) > 0 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		s.p99 = d[min(len(d)-1, len(d)*99/100)]
	}
	return s
}
