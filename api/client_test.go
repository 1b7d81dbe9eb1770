package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUnreachableSaysWhatToCheck: an answer that never came names what to
// check — the endpoint, or the trust in the server's certificate.
func TestUnreachableSaysWhatToCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	for _, tt := range []struct{ base, want string }{
		{closed, "is it running, and is the endpoint right"},
		{tlsSrv.URL, "coligo login --ca-file"},
	} {
		_, err := (&Client{BaseURL: tt.base, Token: "t"}).ListProjects(context.Background(), ListOptions{}, false)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want it to say %q", tt.base, err, tt.want)
		}
	}
}
