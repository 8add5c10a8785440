// The same interop calls with Connect's gRPC-Web transport
// (@connectrpc/connect-web, over fetch, binary only). It checks the
// content type of every answer before it reads the status. The message
// types are described at run time with @bufbuild/protobuf's
// makeMessageType (no generated code); field numbers are those of
// grpc/testing/messages.proto.
import {MethodKind, ScalarType, proto3} from '@bufbuild/protobuf';
import {ConnectError, createPromiseClient} from '@connectrpc/connect';
import {createGrpcWebTransport} from '@connectrpc/connect-web';

const Empty = proto3.makeMessageType('grpc.testing.Empty', []);
const Payload = proto3.makeMessageType('grpc.testing.Payload', [
  {no: 2, name: 'body', kind: 'scalar', T: ScalarType.BYTES},
]);
const EchoStatus = proto3.makeMessageType('grpc.testing.EchoStatus', [
  {no: 1, name: 'code', kind: 'scalar', T: ScalarType.INT32},
  {no: 2, name: 'message', kind: 'scalar', T: ScalarType.STRING},
]);
const SimpleRequest = proto3.makeMessageType('grpc.testing.SimpleRequest', [
  {no: 2, name: 'response_size', kind: 'scalar', T: ScalarType.INT32},
  {no: 3, name: 'payload', kind: 'message', T: Payload},
  {no: 7, name: 'response_status', kind: 'message', T: EchoStatus},
]);
const SimpleResponse = proto3.makeMessageType('grpc.testing.SimpleResponse', [
  {no: 1, name: 'payload', kind: 'message', T: Payload},
]);
const ResponseParameters = proto3.makeMessageType('grpc.testing.ResponseParameters', [
  {no: 1, name: 'size', kind: 'scalar', T: ScalarType.INT32},
]);
const StreamingOutputCallRequest = proto3.makeMessageType('grpc.testing.StreamingOutputCallRequest', [
  {no: 2, name: 'response_parameters', kind: 'message', T: ResponseParameters, repeated: true},
]);
const StreamingOutputCallResponse = proto3.makeMessageType('grpc.testing.StreamingOutputCallResponse', [
  {no: 1, name: 'payload', kind: 'message', T: Payload},
]);

const TestService = {
  typeName: 'grpc.testing.TestService',
  methods: {
    emptyCall: {name: 'EmptyCall', I: Empty, O: Empty, kind: MethodKind.Unary},
    unaryCall: {name: 'UnaryCall', I: SimpleRequest, O: SimpleResponse, kind: MethodKind.Unary},
    streamingOutputCall: {name: 'StreamingOutputCall', I: StreamingOutputCallRequest,
      O: StreamingOutputCallResponse, kind: MethodKind.ServerStreaming},
  },
};

function object(headers) {
  const o = {};
  headers?.forEach((v, k) => (o[k] = v));
  return o;
}

// call runs one call (invoke gets the call options and returns the messages
// it received) and returns what the client saw, in the shape page.js uses.
async function call(invoke) {
  const seen = {messages: [], headers: null, status: null, error: null};
  const options = {
    onHeader: (h) => (seen.headers = object(h)),
    onTrailer: (t) => (seen.status = {code: 0, details: '', metadata: object(t)}),
  };
  try {
    for (const m of await invoke(options)) {
      seen.messages.push(m.payload ? {payloadSize: m.payload.body.length} : {bytes: m.toBinary().length});
    }
  } catch (e) {
    const err = ConnectError.from(e);
    seen.status = null;
    seen.error = {code: err.code, message: err.rawMessage, metadata: object(err.metadata)};
  }
  return seen;
}

// runConnect runs the Connect cases against base and adds their results to
// results under "… connect" names.
export async function runConnect(base, results, values) {
  const client = createPromiseClient(TestService, createGrpcWebTransport({baseUrl: base}));
  const offline = createPromiseClient(TestService, createGrpcWebTransport({baseUrl: base + '/offline'}));
  const unary = (c, method, request, headers) => call(async (o) => [await c[method](request, {...o, headers})]);
  results['empty_unary connect'] = await unary(client, 'emptyCall', {});
  results['large_unary connect'] = await unary(client, 'unaryCall', {
    responseSize: values.largeRequest.responseSize, payload: values.largeRequest.payload});
  results['custom_metadata connect'] = await unary(client, 'unaryCall', {responseSize: 1}, values.echoMetadata);
  results['status connect'] = await unary(client, 'unaryCall',
      {responseStatus: {code: 2, message: values.specialMessage}});
  results['offline connect'] = await unary(offline, 'emptyCall', {});
  results['server_streaming connect'] = await call(async (o) => {
    const messages = [];
    const request = {responseParameters: values.streamSizes.map((size) => ({size}))};
    for await (const m of client.streamingOutputCall(request, o)) messages.push(m);
    return messages;
  });
}
