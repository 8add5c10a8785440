package frontend

// waitQueue is a queue of connections that wait for a request, the one
// that began waiting first at its head: the order maxConnections sheds
// them in (shedIdle). It is intrusive, linked through each element's
// waitLink, so pushing and taking out an element is no allocation and no
// map operation. Its owner's lock guards it and every link in it.
type waitQueue[T any] struct{ head, tail *waitLink[T] }

// waitLink is an element's place in a waitQueue: v is the element, q the
// queue it is in (nil: none).
type waitLink[T any] struct {
	v          T
	q          *waitQueue[T]
	prev, next *waitLink[T]
}

// push puts l, in no queue, at q's tail.
func (q *waitQueue[T]) push(l *waitLink[T]) {
	l.prev, l.next, l.q = q.tail, nil, q
	if q.tail != nil {
		q.tail.next = l
	} else {
		q.head = l
	}
	q.tail = l
}

// unqueue takes l out of the queue it is in, if any.
func (l *waitLink[T]) unqueue() {
	q := l.q
	if q == nil {
		return
	}
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		q.head = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	} else {
		q.tail = l.prev
	}
	l.prev, l.next, l.q = nil, nil, nil
}

// pop takes the element at q's head out of q; ok is false when q is
// empty.
func (q *waitQueue[T]) pop() (v T, ok bool) {
	l := q.head
	if l == nil {
		return v, false
	}
	l.unqueue()
	return l.v, true
}
