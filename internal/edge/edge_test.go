package edge

import (
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	tb := NewTable()
	closed := make(chan struct{})
	pub, removePub := tb.Add(Session{Kind: "rtmp-publish", Stream: "a", Created: time.Now(), Publisher: true}, func() {
		select {
		case <-closed:
		default:
			close(closed)
		}
	})
	rd, removeRd := tb.Add(Session{Kind: "srt-read", Stream: "a", Created: time.Now().Add(time.Second)}, func() {})
	if pub.ID != "rtmp-1" || rd.ID != "srt-2" {
		t.Fatalf("ids %q %q, want rtmp-1 and srt-2", pub.ID, rd.ID)
	}
	if l := tb.Sessions(); len(l) != 2 || l[0].ID != pub.ID || l[1].ID != rd.ID {
		t.Fatalf("sessions %+v, want the publisher then the reader", l)
	}
	if p, ok := tb.Publisher("a"); !ok || p.ID != pub.ID {
		t.Fatalf("publisher of a: %+v %v", p, ok)
	}
	if _, ok := tb.Publisher("b"); ok {
		t.Fatal("b has a publisher")
	}
	// Kick closes the session and waits for its owner to remove it.
	go func() {
		<-closed
		removePub()
	}()
	if !tb.KickPublisher("a") {
		t.Fatal("KickPublisher(a) = false")
	}
	if _, ok := tb.Get(pub.ID); ok {
		t.Fatal("the kicked publisher is still listed")
	}
	if tb.Kick(pub.ID) {
		t.Fatal("a second Kick found the session")
	}
	removeRd()
	removeRd()
	if l := tb.Sessions(); len(l) != 0 {
		t.Fatalf("sessions %+v after removal", l)
	}

	var none *Table
	s, remove := none.Add(Session{Kind: "rtmp-read"}, func() {})
	remove()
	if none.Sessions() != nil || none.Kick(s.ID) || none.KickPublisher("a") {
		t.Fatal("a nil table holds something")
	}
}
