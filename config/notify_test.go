package config

import "testing"

// TestInsecureHTTPNotifications: http:// webhook, Slack and ping URLs load
// when insecure_http (notify) and ping_insecure_http (job) allow them.
func TestInsecureHTTPNotifications(t *testing.T) {
	c, err := Parse("coffer.yaml", []byte("recipients: ["+testRecipient+"]\n"+
		"destinations:\n  d: {type: local, path: /b}\n"+
		"jobs:\n  app:\n    source: {type: postgres, database: app}\n"+
		"    ping_url: http://127.0.0.1:8000/ping/app\n    ping_insecure_http: true\n"+
		"notify:\n  insecure_http: true\n  webhooks: [\"http://127.0.0.1:8000/hook\"]\n  slack: [\"https://hooks.slack.example/x\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Notify.InsecureHTTP || !c.Jobs["app"].PingInsecureHTTP {
		t.Errorf("notify.insecure_http %v, ping_insecure_http %v: want both set", c.Notify.InsecureHTTP, c.Jobs["app"].PingInsecureHTTP)
	}
}
