package ratelimit

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Limit
		wantErr  bool
	}{
		{"per hour", "100/1h", Limit{Rate: 100, Period: time.Hour, Burst: 100}, false},
		{"per minute", "10/1m", Limit{Rate: 10, Period: time.Minute, Burst: 10}, false},
		{"off", "off", Limit{}, false},
		{"no period", "100", Limit{}, true},
		{"zero count", "0/1h", Limit{}, true},
		{"negative count", "-1/1h", Limit{}, true},
		{"bad duration", "10/hour", Limit{}, true},
		{"faster than a millisecond", "10000/1s", Limit{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
