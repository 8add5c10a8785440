// The page's script: Google's grpc-web client calls grpc-go's interop
// server (grpc.testing.TestService) through Gatehouse, case by case, then
// connect.js makes the same calls with Connect's gRPC-Web transport, and
// the page leaves what they saw in window.results for run.mjs to collect. The
// messages are written and read with google-protobuf's BinaryWriter and
// BinaryReader by hand (no generated code: protoc's plugins are not in npm);
// field numbers are those of grpc/testing/messages.proto.
import {GrpcWebClientBase, MethodDescriptor, MethodType} from 'grpc-web';
import {BinaryReader, BinaryWriter} from 'google-protobuf';
import {runConnect} from './connect.js';

const service = '/grpc.testing.TestService/';

// Payload: body = 2.
function writePayload(p, w) {
  w.writeBytes(2, p.body);
}

// EchoStatus: code = 1, message = 2.
function writeEchoStatus(s, w) {
  w.writeInt32(1, s.code);
  w.writeString(2, s.message);
}

// SimpleRequest: response_size = 2, payload = 3, response_status = 7.
function serializeSimpleRequest(r) {
  const w = new BinaryWriter();
  if (r.responseSize) w.writeInt32(2, r.responseSize);
  if (r.payload) w.writeMessage(3, r.payload, writePayload);
  if (r.responseStatus) w.writeMessage(7, r.responseStatus, writeEchoStatus);
  return w.getResultBuffer();
}

// StreamingOutputCallRequest: response_parameters = 2 (ResponseParameters:
// size = 1), payload = 3.
function serializeStreamingOutputCallRequest(r) {
  const w = new BinaryWriter();
  for (const size of r.sizes) w.writeMessage(2, size, (s, pw) => pw.writeInt32(1, s));
  if (r.payload) w.writeMessage(3, r.payload, writePayload);
  return w.getResultBuffer();
}

function serializeEmpty() {
  return new Uint8Array(0);
}

// readPayloadSize reads a message whose field 1 is a Payload (SimpleResponse
// and StreamingOutputCallResponse) and returns the length of the payload's
// body (Payload.body = 2), or -1 when there is no payload.
function readPayloadSize(bytes) {
  const r = new BinaryReader(bytes);
  let size = -1;
  while (r.nextField() && !r.isEndGroup()) {
    if (r.getFieldNumber() !== 1) {
      r.skipField();
      continue;
    }
    size = 0;
    r.readMessage(null, () => {
      while (r.nextField() && !r.isEndGroup()) {
        if (r.getFieldNumber() === 2) size = r.readBytes().length;
        else r.skipField();
      }
    });
  }
  return {payloadSize: size};
}

function deserializeEmpty(bytes) {
  return {bytes: bytes.length};
}

function method(name, type, serialize, deserialize) {
  return new MethodDescriptor(service + name, type, Object, Object, serialize, deserialize);
}

const emptyCall = method('EmptyCall', MethodType.UNARY, serializeEmpty, deserializeEmpty);
const unaryCall = method('UnaryCall', MethodType.UNARY, serializeSimpleRequest, readPayloadSize);
const unimplementedCall = method('UnimplementedCall', MethodType.UNARY, serializeEmpty, deserializeEmpty);
const streamingOutputCall = method('StreamingOutputCall', MethodType.SERVER_STREAMING,
    serializeStreamingOutputCallRequest, readPayloadSize);

// call makes one call and resolves to what the client saw: the messages
// (their decoded form), the response header metadata, and the status: code,
// details and trailer metadata. A unary call goes through rpcCall, whose
// callback ends it; a server-streaming one through serverStreaming, ended by
// its status (or error) event. It never rejects.
function call(client, url, desc, request, metadata, streaming) {
  return new Promise((resolve) => {
    const seen = {messages: [], headers: null, status: null, error: null};
    let stream;
    if (streaming) {
      stream = client.serverStreaming(url, request, metadata, desc);
      stream.on('data', (m) => seen.messages.push(m));
      stream.on('error', (e) => {
        seen.error = {code: e.code, message: e.message, metadata: e.metadata};
        resolve(seen);
      });
      stream.on('end', () => resolve(seen));
    } else {
      stream = client.rpcCall(url, request, metadata, desc, (e, m) => {
        if (e) seen.error = {code: e.code, message: e.message, metadata: e.metadata};
        else seen.messages.push(m);
        resolve(seen);
      });
    }
    stream.on('metadata', (md) => (seen.headers = md));
    stream.on('status', (st) => (seen.status = {code: st.code, details: st.details, metadata: st.metadata}));
  });
}

// The interop suite's values: large_unary, server_streaming, custom_metadata
// and special_status_message.
const largeRequest = {responseSize: 314159, payload: {body: new Uint8Array(271828)}};
const streamSizes = [31415, 9, 2653, 58979];
const echoMetadata = {
  'x-grpc-test-echo-initial': 'test_initial_metadata_value',
  'x-grpc-test-echo-trailing-bin': btoa('\xab\xab\xab'),
};
const specialMessage = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \ud83d\ude08\t\n';

async function run(base) {
  const binary = new GrpcWebClientBase({format: 'binary'});
  const text = new GrpcWebClientBase({format: 'text'});
  const offline = base + '/offline';
  const results = {};
  const cases = [
    ['empty_unary binary', binary, base, emptyCall, {}],
    ['empty_unary text', text, base, emptyCall, {}],
    ['large_unary binary', binary, base, unaryCall, largeRequest],
    ['large_unary text', text, base, unaryCall, largeRequest],
    ['server_streaming text', text, base, streamingOutputCall, {sizes: streamSizes}],
    ['custom_metadata binary', binary, base, unaryCall, {responseSize: 1}, echoMetadata],
    ['custom_metadata text', text, base, unaryCall, {responseSize: 1}, echoMetadata],
    ['status binary', binary, base, unaryCall, {responseStatus: {code: 2, message: specialMessage}}],
    ['status text', text, base, unaryCall, {responseStatus: {code: 2, message: specialMessage}}],
    ['unimplemented_method text', text, base, unimplementedCall, {}],
    ['offline binary', binary, offline, emptyCall, {}],
    ['offline text', text, offline, emptyCall, {}],
  ];
  for (const [name, client, b, desc, request, metadata] of cases) {
    results[name] = await call(client, b + desc.getName(), desc, request, metadata || {},
        desc === streamingOutputCall);
  }
  await runConnect(base, results, {largeRequest, streamSizes, echoMetadata, specialMessage});
  return results;
}

// The page runs every case against each Gatehouse URL it is given
// (?gatehouse=URL&gatehouse=URL…), one after another: results[URL][case].
async function runAll(bases) {
  const results = {};
  for (const base of bases) results[base] = await run(base);
  return results;
}

runAll(new URLSearchParams(location.search).getAll('gatehouse')).then(
    (r) => (window.results = r),
    (e) => (window.results = {error: String(e && e.stack || e)}));
