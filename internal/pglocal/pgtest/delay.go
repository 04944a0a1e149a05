package pgtest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// DelayProxy listens on a loopback port and forwards every connection to
// target, holding each chunk of bytes back by oneWay in each direction. It
// stands in for the network between pwb and shards on other hosts, which
// loopback does not have, so benchmarks can show what waiting on the network
// costs. It returns the proxy's port; it closes when the test ends.
func DelayProxy(t testing.TB, target string, oneWay time.Duration) int {
	t.Helper()
	return forward(t, target, func(client, server net.Conn) {
		go delayedCopy(server, client, oneWay)
		go delayedCopy(client, server, oneWay)
	})
}

// forward listens on a loopback port, dials target for every connection
// accepted, and hands both ends to pair, which forwards between them. The
// listener and every connection close when the test ends. It returns the
// port.
func forward(t testing.TB, target string, pair func(client, server net.Conn)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			pair(client, server)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// delayedCopy copies src to dst, writing each chunk oneWay after it was read,
// in order.
func delayedCopy(dst, src net.Conn, oneWay time.Duration) {
	type chunk struct {
		due  time.Time
		data []byte
	}
	queue := make(chan chunk, 4096)
	go func() {
		for c := range queue {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				break
			}
		}
		for range queue { // drain after a write error
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{time.Now().Add(oneWay), append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			close(queue)
			return
		}
	}
}
